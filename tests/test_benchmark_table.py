"""The benchmark table of chapter 06 (recon_lib.benchmark): methods, rows, aggregation, CSV."""
import json
import math
import statistics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import recon_lib as rl
from recon_lib import benchmark as bm

FAST = ("closed_form", "cnn_exact")


def test_registry_holds_the_four_methods_with_their_victims():
    assert list(bm.METHODS) == ["closed_form", "cnn_exact", "stabilised", "fast"]
    assert bm.SEARCHES == ("stabilised", "fast") and bm.METHODS["fast"].options["preset"] == "fast"
    for method in bm.METHODS.values():
        model = method.build((1, 8, 8), 3)
        assert isinstance(model, torch.nn.Module) and model.in_shape == (1, 8, 8)
    # the CNN sits one kernel above Claim 3's bound, the LeNet below it in its second conv
    assert bm.cnn_above_bound((3, 16, 16), 5)[0].out_channels == rl.conditions.min_kernels(16, 3, 4, 2, 1) + 1
    assert bm.dlg_lenet((3, 32, 32), 5)[2].out_channels < rl.conditions.min_kernels(16, 12, 5, 2, 2)


@pytest.mark.parametrize("name", FAST)
def test_batched_attack_equals_one_client_at_a_time(name):
    """N messages from vmap, attacked at once == each client's own message, attacked alone."""
    method = bm.METHODS[name]
    x, y = bm.sample("cifar100", 3, size=8)
    model = method.build(tuple(x.shape[1:]), 100)
    together = method(model, rl.fl.client_updates(model, x, y), x.shape[1:])
    alone = torch.stack([method(model, rl.fl.client_update(model, x[i:i + 1], y[i:i + 1]), x.shape[1:])
                         for i in range(3)])
    torch.testing.assert_close(together, alone.reshape(together.shape), atol=1e-4, rtol=1e-3)  # CGLS tol 1e-6


def test_closed_form_and_cnn_are_exact_on_real_images_and_rows_match_the_metrics():
    table = bm.run(bm.methods(FAST), ["mnist", "wbc"], n=2, seeds=[0, 1], sizes={"wbc": 16},
                   progress=False)
    assert len(table.rows) == 2 * 2 * 2 * 2
    for row in table.rows:
        x, x_hat = table.images[(row["method"], row["kind"], row["seed"])]
        i = row["image"]
        assert row["psnr"] > 60 and row["ssim"] > 0.999
        assert row["mse"] == pytest.approx(float(rl.metrics.mse(x_hat[i], x[i])))
        assert row["psnr"] == pytest.approx(float(rl.metrics.psnr(x_hat[i], x[i])))
        assert row["tv"] == pytest.approx(float(rl.optimize.total_variation(x[i][None])))
        assert row["size"] == ("1×28×28" if row["kind"] == "mnist" else "3×16×16")
        assert row["seconds"] > 0 and row["status"] == "real"


def test_optimisation_method_is_seeded_and_returns_images():
    method = bm.methods(["stabilised"], stabilised={"steps": 3})[0]
    x, y = bm.sample("faces", 2, size=12)
    a, _ = bm.attack_kind(method, x, y, "faces", seed=4, device=torch.device("cpu"))
    b, _ = bm.attack_kind(method, x, y, "faces", seed=4, device=torch.device("cpu"))
    c, _ = bm.attack_kind(method, x, y, "faces", seed=5, device=torch.device("cpu"))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)


def test_sample_spreads_over_the_pack_and_fits_the_head():
    x, y = bm.sample("fmri", 4)
    assert x.shape == (4, 1, 96, 128) and y.tolist() == [3, 9, 15, 21]  # slices of volume 1
    x, y = bm.sample("imagenet", 3, size=16)
    assert x.shape == (3, 3, 16, 16) and bool((y < bm.N_CLASSES["imagenet"]).all())
    assert len(bm.sample("wbc", 50)[0]) == 4  # capped at what the pack holds
    assert set(bm.N_CLASSES) == set(rl.datasets.NAMES)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=12))
def test_summary_is_mean_and_sample_std(values):
    rows = [{"method": "m", "kind": "k", "mse": v, "psnr": v, "ssim": v, "seconds": v} for v in values]
    (entry,) = bm.summarise(rows)
    assert entry["n"] == len(values)
    assert entry["psnr_mean"] == pytest.approx(statistics.fmean(values), abs=1e-9)
    want = statistics.stdev(values) if len(values) > 1 else 0.0
    assert entry["psnr_std"] == pytest.approx(want, rel=1e-6, abs=1e-6)


def test_summary_groups_and_keeps_infinite_psnr():
    rows = [{"method": m, "kind": k, "status": "real", "mse": 0.0, "psnr": math.inf, "ssim": 1.0,
             "seconds": 0.1} for m in "ab" for k in "xy"]
    summary = bm.summarise(rows)
    assert [(s["method"], s["kind"]) for s in summary] == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]
    assert math.isinf(summary[0]["psnr_mean"]) and summary[0]["psnr_std"] == 0.0


def test_format_table_marks_the_stand_in():
    rows = [{"method": "closed_form", "kind": kind, "status": rl.datasets.KINDS[kind].status,
             "mse": 1e-3, "psnr": 30.0, "ssim": 0.9, "seconds": 0.01} for kind in ("mnist", "kmnist")]
    text = bm.format_table(bm.summarise(rows))
    assert "| closed_form | kmnist* | 1 |" in text and "| closed_form | mnist | 1 |" in text
    assert "30.0 ± 0.0" in text and text.count("\n") == 3


def test_csv_round_trip(tmp_path):
    table = bm.run(bm.methods(["closed_form"]), ["faces"], n=2, seeds=[0], progress=False)
    path = bm.write_csv(table.rows, tmp_path / "sub" / "table.csv")
    back = bm.read_csv(path)
    assert [r["image"] for r in back] == [0, 1] and back[0]["method"] == "closed_form"
    for got, want in zip(back, table.rows):
        assert got.keys() == want.keys()
        assert got["psnr"] == pytest.approx(want["psnr"]) and got["seed"] == want["seed"]


# --- Bad input ---------------------------------------------------------------------------------
def test_unknown_or_unselected_methods_are_named():
    with pytest.raises(ValueError, match="nope"):
        bm.methods(["nope"])
    with pytest.raises(ValueError, match="stabilised"):
        bm.methods(["closed_form"], stabilised={"steps": 3})


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_bad_image_count(n):
    with pytest.raises(ValueError, match="positive int"):
        bm.sample("mnist", n)


def test_bad_kind_and_empty_runs():
    with pytest.raises(ValueError, match="unknown"):
        bm.sample("xray", 2)
    with pytest.raises(ValueError, match="at least one"):
        bm.run(bm.methods(FAST), ["mnist"], n=1, seeds=[])
    with pytest.raises(ValueError, match="no rows"):
        bm.summarise([])
    with pytest.raises(ValueError, match="no rows"):
        bm.write_csv([], "unused.csv")


def _custom(attack):
    return bm.Method("custom", "custom", "biased MLP", bm.biased_mlp, attack)


def test_an_attack_with_the_wrong_shape_or_nan_is_refused():
    x, y = bm.sample("mnist", 2, size=8)
    flat = _custom(lambda model, messages, in_shape: torch.zeros(2, 64))
    with pytest.raises(ValueError, match="N×C×H×W"):
        bm.attack_kind(flat, x, y, "mnist", 0, torch.device("cpu"))
    broken = _custom(lambda model, messages, in_shape: torch.full((2, *in_shape), float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        bm.attack_kind(broken, x, y, "mnist", 0, torch.device("cpu"))


@pytest.mark.gpu
def test_runs_on_cuda():
    table = bm.run(bm.methods(FAST), ["cifar100"], n=2, seeds=[0], device="cuda", progress=False)
    assert min(row["psnr"] for row in table.rows) > 60


@pytest.mark.parametrize("shape", [(1, 25, 25), (3, 12, 12), (1, 24, 32), (2, 9, 14)])
def test_kernel_bound_agrees_with_claim_3_and_the_cnn_sits_above_it(shape):
    c, h, w = shape
    if h == w:
        assert bm.kernel_bound(shape) == rl.conditions.min_kernels(h, c, 4, 2, 1)
    model = bm.cnn_above_bound(shape, 3)
    rank = torch.linalg.matrix_rank(rl.conv.as_matrix(model[0].double(), shape))
    assert model[0].out_channels == bm.kernel_bound(shape) + 1 and int(rank) == c * h * w


def test_settings_profiles():
    assert bm.settings("quick").steps < bm.settings("full").steps
    assert bm.settings("full").sizes["imagenet"] == (224, 224)
    with pytest.raises(ValueError, match="profile"):
        bm.settings("huge")


# --- Reading the table -------------------------------------------------------------------------
def test_flat_baseline_is_minus_ten_log_variance():
    x = bm.sample("cifar100", 3, size=8)[0]
    want = -10 * torch.log10(x.double().flatten(1).var(1, correction=0))
    torch.testing.assert_close(bm.flat_baseline(x), want)
    flat = x.flatten(1).mean(1)[:, None, None, None].expand_as(x)
    torch.testing.assert_close(bm.flat_baseline(x), rl.metrics.psnr(flat, x))


def _rows(values, prop):
    return [{"method": "m", "kind": f"k{i % 2}", "psnr": v, "tv": p, "contrast": -p, "unknowns": 1}
            for i, (v, p) in enumerate(zip(values, prop))]


def test_correlations_are_spearman_and_extremes_pick_by_psnr():
    rows = _rows([10.0, 20.0, 30.0, 40.0], [0.1, 0.3, 0.2, 0.4])
    rho = bm.correlations(rows, "m", ("tv", "contrast"))
    assert rho["tv"] == pytest.approx(0.8) and rho["contrast"] == pytest.approx(-0.8)
    best, worst = bm.extremes(rows, "m")["k0"]
    assert (best["psnr"], worst["psnr"]) == (30.0, 10.0)
    with pytest.raises(ValueError, match="at least 3"):
        bm.correlations(rows[:2], "m")
    with pytest.raises(ValueError, match="no rows"):
        bm.extremes(rows, "other")


def test_figures_are_titled_and_labelled():
    import matplotlib.pyplot as plt

    table = bm.run(bm.methods(["closed_form"]), ["mnist", "kmnist", "faces"], n=2, seeds=[0], progress=False)
    for figure in (bm.plot_psnr(bm.summarise(table.rows)), bm.plot_extremes(table, "closed_form"),
                   bm.plot_properties(table.rows, "closed_form")):
        assert figure._suptitle is not None or figure.axes[0].get_title()
        plt.close(figure)
    bars = bm.plot_psnr(bm.summarise(table.rows))
    assert "kmnist*" in [t.get_text() for t in bars.axes[0].get_xticklabels()]
    assert bars.axes[0].get_ylabel() and bars.axes[0].get_xlabel()
    plt.close("all")


def test_the_benchmark_script_writes_csv_and_json(tmp_path, capsys):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from benchmarks import table as script

    report = script.main(["--profile", "quick", "--n", "1", "--seeds", "0", "--steps", "1",
                          "--kinds", "mnist", "faces", "--out", str(tmp_path), "--name", "t"])
    rows = bm.read_csv(tmp_path / "t.csv")
    assert len(rows) == len(bm.METHODS) * 2 and {r["method"] for r in rows} == set(bm.METHODS)
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["settings"]["steps"] == 1 and saved["total_seconds"] == pytest.approx(report["total_seconds"])
    assert saved["command"].startswith("RECON_PROFILE=quick python benchmarks/table.py --profile quick")
    assert saved["workers"] == 1 and saved["methods"] == list(bm.METHODS)
    script.main(["--profile", "quick", "--n", "1", "--seeds", "0", "--steps", "1", "--kinds", "faces",
                 "--methods", "fast", "--out", str(tmp_path), "--name", "one"])
    assert {r["method"] for r in bm.read_csv(tmp_path / "one.csv")} == {"fast"}
    assert "| closed_form | mnist | 1 |" in capsys.readouterr().out


@settings(max_examples=12, deadline=None)
@given(c=st.integers(1, 3), h=st.integers(5, 17), w=st.integers(5, 17), seed=st.integers(0, 1000))
def test_cnn_victim_is_inverted_exactly_for_any_shape(c, h, w, seed):
    """Property: one kernel above the per-side bound, the exact CNN attack recovers any image."""
    torch.manual_seed(seed)
    x = torch.rand(2, c, h, w, dtype=torch.float64)
    model = bm.cnn_above_bound((c, h, w), 3).double()
    messages = rl.fl.client_updates(model, x, torch.tensor([0, 2]))
    x_hat = rl.analytic.invert_cnn(model, messages, (c, h, w), tol=1e-12, max_iter=3000)
    assert float(rl.metrics.psnr(x_hat, x).min()) > 60


def test_worker_processes_give_the_same_rows_as_one_process():
    """Jobs sent to spawned workers (largest first) come back in job order with equal scores."""
    chosen = bm.methods(["closed_form", "stabilised"], stabilised={"steps": 2})
    kwargs = dict(kinds=["faces", "cifar100"], n=2, seeds=[0, 1], sizes={"faces": 10, "cifar100": 8},
                  progress=False)
    alone, together = bm.run(chosen, **kwargs), bm.run(chosen, **kwargs, workers=2)
    drop = lambda row: {k: v for k, v in row.items() if k != "seconds"}  # noqa: E731
    assert [drop(r) for r in together.rows] == [drop(r) for r in alone.rows]
    for key, (x, x_hat) in alone.images.items():
        assert torch.equal(together.images[key][1], x_hat)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_int(workers):
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        bm.run(bm.methods(["closed_form"]), ["faces"], n=1, seeds=[0], workers=workers, progress=False)


def test_workers_are_for_the_cpu_only():
    with pytest.raises(ValueError, match="splits the CPU"):
        bm.run(bm.methods(["closed_form"]), ["faces"], n=1, seeds=[0], device="cuda", workers=2,
               progress=False)

