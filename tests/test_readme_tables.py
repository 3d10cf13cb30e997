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
