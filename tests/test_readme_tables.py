"""scripts/readme_tables.py: the README's measured tables are exactly what the results give."""
import json

import pytest

from scripts import readme_tables as rt

README = """intro
<!-- generated: course-map -->
| # | chapter | time |
|---|---|---|
| 00 | [Threat model](x) | ~7 s |
| 01 | [One node](y) | ~9 s |
<!-- end: course-map -->
<!-- generated: notebook-times -->
old
<!-- end: notebook-times -->
<!-- generated: performance -->
stale 70 µs
<!-- end: performance -->
outro
"""


def test_the_committed_readme_is_up_to_date():
    assert rt.main(["--check"]) == 0, "run python scripts/readme_tables.py"


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(rt, "RESULTS", tmp_path)
    return tmp_path


def test_missing_results_say_not_measured_and_leave_no_stale_number(results):
    text = rt.render(README)
    assert "stale" not in text and "70 µs" not in text and "~7 s" not in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "| 00 | [Threat model](x) | – / – |" in text
    assert rt.NOT_MEASURED in text


def test_notebook_times_fill_the_course_map(results):
    run = dict(ok=True, slowest_cells=[dict(cell=3, seconds=4.0)], command="python benchmarks/notebooks.py")
    runs = [dict(run, notebook="00_threat_model", condition="learner-quiet", seconds=12.4),
            dict(run, notebook="00_threat_model", condition="learner-busy", seconds=30.6),
            dict(run, notebook="01_one_node", condition="learner-busy", seconds=700.0, ok=False)]
    (results / "notebooks.json").write_text(json.dumps(dict(machine=dict(cpu_count=2), runs=runs)))
    text = rt.render(README)
    assert "| 00 | [Threat model](x) | 12 s / 31 s |" in text
    assert "| 01 | [One node](y) | – / failed after 700 s |" in text
    assert "cell 3: 4 s (learner-busy)" in text
    assert rt.render(text) == text   # idempotent


def test_gpu_results_sit_beside_the_cpu_ones(results):
    row = dict(part="a", seconds=8e-6, psnr_db=150.0)
    for name, device, one in (("closed_form", "cpu", 8e-6), ("closed_form_cuda", "cuda", 2e-6)):
        report = dict(rows=[row], one_image_seconds=one, command=f"cmd {device}")
        (results / f"{name}.json").write_text(json.dumps(report))
    line = next(line for line in rt.render(README).splitlines() if "one 3×32×32 image" in line)
    assert "8 µs" in line and "2 µs" in line and "`cmd cpu`" in line


def test_defences_block_reads_no_defence_clipping_and_the_recommended_settings(results):
    plain = dict(psnr_closed_form=153.1, ssim_closed_form=1.0, psnr_span=12.34, ssim_span=-0.003,
                 psnr_optimisation=93.0, ssim_optimisation=1.0)
    rows = [dict(defence="none", strength=0.0, accuracy=0.78, epsilon=None),
            dict(defence="prune", strength=0.0, accuracy=0.7, epsilon=None, recommended=False, **plain),
            dict(defence="dp", strength=0.0, accuracy=0.8, epsilon=None, recommended=False, **plain),
            dict(defence="dp", strength=1.0, accuracy=0.58, epsilon=15.97, recommended=True, **plain),
            dict(defence="batch", strength=16.0, accuracy=0.79, epsilon=None, recommended=True, **plain)]
    settings = dict(lab="mnist_lab(width=8)", threads=1, total_seconds=183.7, n_clients=10, batch_size=8,
                    rounds=100, steps=300)
    (results / "defences.json").write_text(json.dumps(dict(settings=settings, rows=rows)))
    text = rt.defences("")
    assert "(184 s)" in text and "784→8→10" in text and "100 FedSGD rounds" in text
    assert "| none | — | 99 dB / 1.00 | 12.3 dB / 0.00 | 93 dB / 1.00 | 0.78 | — |" in text
    assert "| clipping only (C = 1) | σ = 0 |" in text and "| 0.80 | — |" in text
    assert "| DP-SGD (Opacus, C = 1) | σ = 1 |" in text and "| 0.58 | 16.0 |" in text
    assert "| larger local batch | B = 16 (> h = 8) |" in text
    assert "ratio" not in text   # pruning's off row is the plain message, not a table row


def test_defences_block_without_results_says_not_measured(results):
    assert rt.NOT_MEASURED in rt.defences("old 99 dB") and "99 dB" not in rt.defences("old 99 dB")


def test_table_full_blocks_read_the_csv_and_the_runs(results):
    header = "method,kind,status,image,seed,size,seconds,mse,psnr,ssim,tv,contrast,unknowns\n"
    (results / "table_full.csv").write_text(
        header + "closed_form,mnist,real,0,0,1×28×28,2e-05,0,150,1.0,0,0.1,784\n"
        "closed_form,mnist,real,1,0,1×28×28,4e-05,0,154,1.0,0,0.1,784\n"
        "stabilised,kmnist,STAND-IN,0,0,1×28×28,623.4,0,9.0,0.031,0,0.1,784\n")
    (results / "table_full.json").write_text(json.dumps(dict(
        command="RECON_PROFILE=full python benchmarks/table.py --workers 2 --name table_full",
        total_seconds=2732.6, summary=str([dict(method="stabilised", kind="imagenet", seconds_mean=623.4)]))))
    rows = rt.table_full("")
    assert "| mnist (1×28×28) | 152.0 ± 2.8 / 1.00 / 0.03 ms | – | – | – | 20.0 |" in rows
    assert "| kmnist* (1×28×28) | – | – | 9.0 ± 0.0 / 0.03 / 620 s | – | 20.0 |" in rows
    runs = rt.table_full_runs("")
    assert "--methods stabilised --name table_full` | 2733 s (45.5 min; ImageNet 620 s per image) |" in runs
    assert "| `table_full_fast` | not measured |" in runs and "**46 min** in all" in runs


def test_significant_digits():
    assert [rt._significant(v) for v in (623.4, 24.4, 5.2512, 2.04, 0.398, 0.00826)] == \
        ["620", "24", "5.3", "2.0", "0.4", "0.008"]
