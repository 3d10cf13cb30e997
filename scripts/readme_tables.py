"""Fill the README's measured tables from ``benchmarks/results/*.json``: no pasted numbers.

    python scripts/readme_tables.py           # rewrite the generated blocks of README.md
    python scripts/readme_tables.py --check   # exit 1 if README.md is not what the results give

Each generated block sits between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->``; the
text between is replaced, everything else is left alone. Blocks:

* ``course-map``: the chapter table's last column (seconds as a learner runs each chapter,
  quiet / with one core busy) from ``notebooks.json`` (``benchmarks/notebooks.py``);
* ``notebook-times``: every condition of ``notebooks.json`` and the slowest cell;
* ``performance``: one row per benchmark figure, CPU beside GPU (``<name>_cuda.json``, written
  by ``benchmarks/gpu.sh``), with the command that produced it.
* ``victims``, ``federation``: chapter 08's tables (``victims.json``, ``federation.json``);
* ``table-full``, ``table-full-runs``: chapter 06's full-profile table and its runs (``table_full*``);
* ``defences``: chapter 07's summary (``defences.json``, ``benchmarks/defences.py``).

A result file that does not exist gives "not measured", never a stale number.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
NOT_MEASURED = "not measured"


def load(name: str, device: str = "cpu") -> dict | None:
    """``benchmarks/results/<name>.json`` (``<name>_cuda.json`` for the GPU), or None."""
    path = RESULTS / f"{name}{'' if device == 'cpu' else '_' + device}.json"
    return json.loads(path.read_text()) if path.exists() else None


def seconds(value: float) -> str:
    """A time with a sensible unit and 2-3 significant digits."""
    if value < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def rate(value: float) -> str:
    return f"{value:.3g}" if value < 1e3 else f"{value:.2g}".replace("e+0", "·10^").replace("e+", "·10^")


# --- notebooks ----------------------------------------------------------------------------------
def notebook_runs() -> dict[str, dict[str, dict]]:
    """{notebook stem: {condition: run}} from notebooks.json."""
    report = load("notebooks") or {"runs": []}
    runs: dict[str, dict[str, dict]] = {}
    for run in report["runs"]:
        runs.setdefault(run["notebook"], {})[run["condition"]] = run
    return runs


def _time(run: dict | None) -> str:
    if run is None:
        return "–"
    return f"{run['seconds']:.0f} s" if run["ok"] else f"failed after {run['seconds']:.0f} s"


def course_map(block: str) -> str:
    """Replace the last cell of each chapter row (``| 00 | …``) with its learner times."""
    runs = notebook_runs()

    def row(match: re.Match) -> str:
        cells = match.group(0).rstrip().rstrip("|").split("|")
        mine = next((v for k, v in runs.items() if k.startswith(match.group(1))), {})
        cells[-1] = f" {_time(mine.get('learner-quiet'))} / {_time(mine.get('learner-busy'))} "
        return "|".join(cells) + "|"

    return re.sub(r"^\| (\d\d) \|.*$", row, block, flags=re.M)


def notebook_times(_: str) -> str:
    runs = notebook_runs()
    if not runs:
        return f"\n{NOT_MEASURED}: run `python benchmarks/notebooks.py`\n"
    conditions = ("learner-quiet", "learner-busy", "ci-quiet", "ci-busy")
    lines = ["| notebook | " + " | ".join(conditions) + " | slowest cell |", "|---" * 6 + "|"]
    for name in sorted(runs):
        mine = runs[name]
        worst = max(mine.values(), key=lambda r: r["seconds"])
        cell = worst["slowest_cells"][0] if worst["slowest_cells"] else None
        slow = f"cell {cell['cell']}: {cell['seconds']:.0f} s ({worst['condition']})" if cell else "–"
        lines.append(f"| {name} | " + " | ".join(_time(mine.get(c)) for c in conditions) + f" | {slow} |")
    commands = sorted({r["command"] for m in runs.values() for r in m.values() if "command" in r})
    loads = [r["load_average"] for m in runs.values() for r in m.values() if "load_average" in r]
    load_note = (f" (1-minute load average at the end of each run: {min(loads):.1f}–{max(loads):.1f}; "
            "'quiet' means no busy-loop of ours, not an idle machine)" if loads else "")
    machine = (load("notebooks") or {}).get("machine", {})
    return ("\n" + "\n".join(lines) + f"\n\nMeasured on {machine.get('cpu_count', '?')} CPU cores"
            + f"{load_note} with " + "; ".join(f"`{c}`" for c in commands) + ".\n")


# --- performance --------------------------------------------------------------------------------
def _closed_one(d: dict) -> str:
    one = d.get("one_image_seconds", d["rows"][0]["seconds"])
    return f"{seconds(one)} (target ≤ 10 µs), PSNR {d['rows'][0]['psnr_db']:.0f} dB"


def _closed_batch(d: dict) -> str:
    rows = [r for r in d["rows"] if r["part"] == "b" and r["model"].startswith("MLP 3072-1-")]
    parts = [f"N = {r['n_images']}: {rate(r['images_per_second'])} img/s"
             + (f" ({r['copy_share']:.0%} of a copy)" if "copy_share" in r else "") for r in rows]
    return "; ".join(parts)


def _dlg(d: dict) -> str:
    rows = [r for r in d["rows"] if r["part"] == "c"]
    if not rows:
        return NOT_MEASURED
    r = rows[0]
    return (f"{seconds(r['seconds'])}, {r['psnr_db']:.1f} dB: {rate(d['dlg_over_closed_form'])}× slower "
            "than the closed form")


def _batch(d: dict) -> str:
    rows = d["rows"]
    return "; ".join(f"{name}: {seconds(r['seconds'])}, {r['images_at_40db']}/{d['batch_size']} ≥ 40 dB"
                     for name, r in rows.items())


def _batch_repeated(d: dict) -> str:
    case = d["cases"]["repeated labels"]
    return "; ".join(f"{name}: {case[name]['share_40db']:.0%} ≥ 40 dB, "
                     f"{seconds(case[name]['median_seconds'])}" for name in ("span + LM", "span + L-BFGS"))


def _conv(d: dict) -> str:
    r = d["headline_3x3"]
    return f"{r['psnr_db']:.0f} dB in {seconds(r['seconds'])} (dense matrix: {r['dense_matrix_gb']:.0f} GB)"


def _conv_lenet(d: dict) -> str:
    r = d["lenet_weight_grads"]
    return f"{r['psnr_db']:.1f} dB in {seconds(r['seconds'])}"


def _conditioning(d: dict) -> str:
    rows = d["conditioning_5x5"]
    budgets = sorted(int(k.split("@")[1]) for k in rows[0] if k.startswith("psnr_db@"))
    last = budgets[-1]
    return "; ".join(f"h = {r['h']}: condition {r['condition_number']:.3g}, {r[f'psnr_db@{last}']:.0f} dB "
                     f"after {last} iterations" for r in rows)


def _stabilisers(d: dict) -> str:
    return "; ".join(f"{r['config']}: {r['success_rate']:.0%}, {r['median_steps']:.0f} steps"
                     for r in d["stabilisers"]) + f" ({d['seeds']} seeds, {d['size']}×{d['size']})"


def _unseen(d: dict) -> str:
    parts = []
    for c in d["unseen"]:
        ours, t, ref = c["ours"], c["ours"]["seconds_to_success"], c["reference"]
        low, high = ours["interval"]
        spread = ("time to success " + "/".join(f"{t[k]:.1f}" for k in ("min", "q1", "median", "q3", "max"))
                  + " s" if t.get("n") else "no success")
        by_init = ", ".join(f"{i} init {v:.0%}" for i, v in ref.get("by_init", {}).items())
        parts.append(f"{c['condition']}: `{ours['settings']['preset']}` {ours['success_rate']:.0%} success "
                     f"(95 % CI {low:.0%}–{high:.0%}, n = {len(ours['runs'])}), {spread} "
                     f"(min/q1/median/q3/max); published DLG {ref['success_rate']:.0%} success"
                     f"{f' ({by_init})' if by_init else ''}, median time to success "
                     f"{ref.get('seconds_to_success', ref['attack_seconds']).get('median', math.nan):.1f} s: "
                     f"**{c['speedup']:.1f}× faster**")
    return "<br>".join(parts)


def _target(d: dict) -> str:
    t = d["target"]
    ref = t["reference"]
    return (f"DLG {ref['success_rate']:.0%} success, median {ref['median_attack_seconds']:.1f} s;"
            f" `{t['ours']['settings']['preset']}` {t['ours']['success_rate']:.0%}, median "
            f"{t['ours']['median_seconds_to_success']:.1f} s "
            f"to success ({1 / t['time_ratio']:.1f}× faster)")


def _imprint(d: dict) -> str:
    g = d["goal"]
    return (f"{g['mean']:.0%} of the batch at ≥ 40 dB ({g['seeds']} seeds, 95 % CI {g['ci95'][0]:.0%}–"
            f"{g['ci95'][1]:.0%}, worst {g['min']:.0%}; binomial {g['expected']:.0%}); attack "
            f"{seconds(g['warm_median_s'])} (median), {seconds(g['end_to_end_s'])} end to end "
            "(target ≥ 50 % in ≤ 1 s)")


# (what, result file, formatter, command when the file does not record its own)
ROWS: list[tuple[str, str, Callable[[dict], str], str]] = [
    ("closed form, one 3×32×32 image through `rl.analytic.reconstruct`", "closed_form", _closed_one,
     "python benchmarks/closed_form.py --threads 1"),
    ("closed form, N clients at once (3×32×32, h = 1), against a plain copy of the same tensor",
     "closed_form", _closed_batch, "python benchmarks/closed_form.py --threads 1"),
    ("published DLG on the same image (LeNet-DLG, 300 × 20 L-BFGS iterations)", "closed_form", _dlg,
     "python benchmarks/closed_form.py --threads 1"),
    ("16 MNIST digits, h = 32: leaked span + LM vs L-BFGS", "batch", _batch,
     "python benchmarks/batch.py --repeats 3"),
    ("16 MNIST digits over 10 classes (repeated labels), h = 32", "batch_repeated", _batch_repeated,
     "python benchmarks/batch_repeated.py"),
    ("3×224×224 photo through a sigmoid 3→4→5 'same' CNN", "conv", _conv, "python benchmarks/conv.py"),
    ("one 3→h 5×5 conv at 224×224: condition number and CGLS", "conv", _conditioning,
     "python benchmarks/conv.py"),
    ("DLG LeNet inverted in closed form with weight-gradient equations", "conv", _conv_lenet,
     "python benchmarks/conv.py"),
    ("stabiliser study, LeNet-DLG, published optimiser, stop at a matching loss of 1e-6", "optimisation",
     _stabilisers, "python benchmarks/optimisation.py --seeds 5 --size 16 --parts stabilisers,fc,batches"),
    ("our best preset vs published DLG, CIFAR-100 (the victim chapter 04 tunes on)", "optimisation_target",
     _target, "python benchmarks/optimisation.py --seeds 10 --size 32 --parts target"),
    ("our best preset vs published DLG on unseen victims (faces, ImageNet, WBC, fMRI × seeds × both weight "
     "inits: DLG's U(±0.5) and PyTorch's default), quiet and with one core busy", "optimisation_unseen",
     _unseen, "python benchmarks/optimisation.py --parts unseen --busy both"),
    ("imprint module (chapter 09): B = 64 CIFAR-100 images, 128 bins, verified images only", "imprint",
     _imprint, "python benchmarks/imprint.py --threads 1"),
]


def _cell(name: str, device: str, formatter: Callable[[dict], str]) -> tuple[str, str | None]:
    data = load(name, device)
    if data is None:
        return NOT_MEASURED, None
    try:
        return formatter(data), data.get("command")
    except (KeyError, IndexError, TypeError, ZeroDivisionError) as error:
        return f"{NOT_MEASURED} ({type(error).__name__} reading {name}.json)", None


def performance(_: str) -> str:
    lines = ["| what | CPU | GPU | command |", "|---|---|---|---|"]
    for what, name, formatter, command in ROWS:
        cpu, recorded = _cell(name, "cpu", formatter)
        gpu = _cell(name, "cuda", formatter)[0]
        lines.append(f"| {what} | {cpu} | {gpu} | `{recorded or command}` |")
    gpu_run = load("gpu_run")
    note = (f"GPU: {gpu_run['gpu']}, `bash benchmarks/gpu.sh` in {gpu_run['total_seconds']} s."
            if gpu_run else "GPU: not measured yet (`bash benchmarks/gpu.sh` on a CUDA machine fills the "
            "column).")
    return "\n" + "\n".join(lines) + f"\n\n{note}\n"


# --- chapter 08 ----------------------------------------------------------------------------------
def victims(_: str) -> str:
    """Chapter 08's victims table from ``victims.json`` (``benchmarks/victims.py``)."""
    report = load("victims")
    if report is None:
        return f"\n{NOT_MEASURED}: run `python benchmarks/victims.py`\n"
    s, acc = report["settings"], report["accuracy"]
    header = "| victim | attack | PSNR (median) | SSIM | ≥ 40 dB | ≥ 20 dB | dead | rank ∂W | condition |"
    lines = [header, "|---" * 9 + "|"]
    for r in report["rows"]:
        rank = "–" if math.isnan(r["rank_dw"]) else f"{r['rank_dw']:.0f}"
        dead = "–" if math.isnan(r["dead_units"]) else f"{r['dead_units']:.2f}"
        lines.append(f"| {r['label']} | {r['attack']} | {r['psnr_median']:.1f} dB | {r['ssim_median']:.2f} | "
                     f"{r['frac_40db']:.0%} | {r['frac_20db']:.0%} | {dead} | {rank} | {r['condition']} |")
    rounds = len(acc["sigmoid"]) - 1
    return (f"\n`{s['command']}` ({s['seconds'] / 60:.0f} min on a 2-core CPU; training engine "
            f"`{s.get('engine', 'flower')}`; {s['seeds']} seeds per row). Test accuracy of the trained "
            f"MLPs after {rounds} rounds: sigmoid {acc['sigmoid'][-1]:.2f}, ReLU {acc['relu'][-1]:.2f} "
            "(100 held-out digits).\n\n" + "\n".join(lines) + "\n")


def federation(_: str) -> str:
    """Chapter 08's Flower figures from ``federation.json`` (``benchmarks/federation.py``)."""
    report = load("federation")
    if report is None:
        return f"\n{NOT_MEASURED}: run `python benchmarks/federation.py`\n"
    ray, lines = report["ray"], ["| what | result |", "|---|---|"]
    lines.append("| Ray start (`ray.init` alone, fresh process) | " + (
        f"failed: {ray['error']} |" if "error" in ray else
        f"{seconds(ray['ray_init_s'])} ({len(ray.get('failed_tries_s', []))} failed tries before) |"))
    for row in report["throughput"]:
        if "error" in row:
            lines.append(f"| {row['clients']} clients ({row.get('engine', 'ray')}) through the curious "
                         f"server | failed: {row['error']} |")
            continue
        lines.append(f"| {row['clients']} clients ({row.get('engine', 'ray')}), one FedSGD round through "
                     f"the curious server, closed form on every reply | {rate(row['clients_per_s'])} "
                     f"clients/s (round {seconds(row['round_s'])}, {seconds(row['wall_s'])} in all) |")
    if "deployment" in report:
        d = report["deployment"]
        if "error" in d:
            lines.append(f"| deployment engine | failed: {d['error']} |")
            return f"\n`{report['settings']['command']}`\n\n" + "\n".join(lines) + "\n"
        lines.append(f"| deployment engine: SuperLink + 2 SuperNodes, one `flwr run` | start "
                     f"{seconds(d['start_s'])}, run {seconds(d['run_s'])}, stop {seconds(d['stop_s'])}; "
                     f"{d['processes_left']} processes left |")
    return f"\n`{report['settings']['command']}`\n\n" + "\n".join(lines) + "\n"


# --- chapter 06 ----------------------------------------------------------------------------------
TABLE_FULL = ("table_full", "table_full_fast", "table_full_wbc")
#: Kinds whose rows in ``table_full`` and ``table_full_fast`` were measured on an earlier sample
#: pack and are not shown; a later file of TABLE_FULL that holds the kind replaces them.
REMEASURE = {"wbc": "RECON_PROFILE=full python benchmarks/table.py --kinds wbc --name table_full_wbc"}
TABLE_COLUMNS = {"closed_form": ("closed form (biased FC)", 1e3, "ms"),
                 "cnn_exact": ("exact CNN inversion", 1, "s"),
                 "stabilised": ("`stabilised` preset (formerly `paper`), DLG LeNet", 1, "s"),
                 "fast": ("`fast` preset, DLG LeNet", 1, "s")}
OPTIMISATION = ("stabilised", "fast")


def _significant(value: float) -> str:
    """One significant digit below 1, two from 1 on (620, 24, 5.3, 0.4, 0.008)."""
    if value <= 0 or not math.isfinite(value):
        return f"{value:g}"
    places = (1 if value < 1 else 2) - 1 - math.floor(math.log10(value))
    return f"{round(value, places):.{max(places, 0)}f}"


def _table_full_rows() -> dict[tuple[str, str], list[dict]]:
    """{(method, kind): rows} of every ``table_full*.csv``."""
    import csv

    groups: dict[tuple[str, str], list[dict]] = {}
    for name in TABLE_FULL:
        path = RESULTS / f"{name}.csv"
        for row in (csv.DictReader(path.open()) if path.exists() else []):
            stale = row["kind"] in REMEASURE and name != REMEASURE[row["kind"]].split()[-1]
            if not stale:
                groups.setdefault((row["method"], row["kind"]), []).append(row)
    return groups


def _mean_std(rows: list[dict], key: str) -> tuple[float, float]:
    values = [float(r[key]) for r in rows]
    mean = sum(values) / len(values)
    return mean, (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5


def table_full(_: str) -> str:
    """Chapter 06's full-profile table from ``table_full*.csv`` (``benchmarks/table.py``): PSNR mean ±
    std / SSIM / seconds per image, and the flat guess (mean 10·log10(1 / pixel variance), from the
    contrast column of the optimisation rows, the images those searches ran on)."""
    groups = _table_full_rows()
    if not groups:
        return f"\n{NOT_MEASURED}: run `RECON_PROFILE=full python benchmarks/table.py`\n\n"
    kinds = list(dict.fromkeys(kind for _, kind in groups))
    lines = ["| kind (size) | " + " | ".join(c[0] for c in TABLE_COLUMNS.values()) + " | flat guess |",
             "|---" * (len(TABLE_COLUMNS) + 2) + "|"]
    for kind in kinds:
        first = next(rows for (_, k), rows in groups.items() if k == kind)[0]
        cells = [f"{kind}{'*' if first['status'] == 'STAND-IN' else ''} ({first['size']})"]
        for method, (_, scale, unit) in TABLE_COLUMNS.items():
            rows = groups.get((method, kind))
            if not rows:
                cells.append("–")
                continue
            psnr, spread = _mean_std(rows, "psnr")
            ssim, time_ = _mean_std(rows, "ssim")[0], _mean_std(rows, "seconds")[0]
            cells.append(f"{psnr:.1f} ± {spread:.1f} / {ssim:.2f} / {_significant(time_ * scale)} {unit}")
        searched = next((groups[m, kind] for m in OPTIMISATION if (m, kind) in groups), [first])
        flat = sum(10 * math.log10(1 / float(r["contrast"]) ** 2) for r in searched) / len(searched)
        lines.append("| " + " | ".join(cells) + f" | {flat:.1f} |")
    for kind, command in REMEASURE.items():
        if kind not in kinds:
            lines.append(f"| {kind} | not yet measured on the current pack: `{command}` |"
                         + " |" * len(TABLE_COLUMNS))
    return "\n" + "\n".join(lines) + "\n\n"


def table_full_runs(_: str) -> str:
    """The command and wall time of each stored full-profile run (``table_full*.json``)."""
    lines, total = ["| command | wall time |", "|---|---|"], 0.0
    for name in TABLE_FULL:
        report = load(name)
        if report is None:
            lines.append(f"| `{name}` | {NOT_MEASURED} |")
            continue
        command = report["command"]
        if "--methods" not in command:  # older runs stored the command without its methods
            methods = " ".join(dict.fromkeys(r["method"] for r in _summary(report)))
            command = command.replace(" --name", f" --methods {methods} --name")
        total += report["total_seconds"]
        imagenet = [r["seconds_mean"] for r in _summary(report)
                    if r["kind"] == "imagenet" and r["method"] in OPTIMISATION]
        per_image = f"; ImageNet {_significant(imagenet[0])} s per image" if imagenet else ""
        lines.append(f"| `{command}` | {report['total_seconds']:.0f} s "
                     f"({report['total_seconds'] / 60:.1f} min{per_image}) |")
    return "\n" + "\n".join(lines) + f"\n\nSo the whole full table takes **{total / 60:.0f} min** in all.\n"


def _summary(report: dict) -> list[dict]:
    """The run's summary rows (stored as a list, or as its Python repr by older runs)."""
    import ast

    summary = report.get("summary", [])
    return ast.literal_eval(summary) if isinstance(summary, str) else summary


# --- chapter 07 ----------------------------------------------------------------------------------
DEFENCE_ROWS = {"dp": ("DP-SGD (Opacus, C = 1)", "σ = {:g}"), "prune": ("top-k pruning", "ratio {:g}"),
                "quantize": ("quantisation", "{:g} bits"),
                "batch": ("larger local batch", "B = {:g} (> h = {h})"),
                "secure_aggregation": ("secure aggregation", "N = {:g} clients"),
                "local_steps": ("FedAvg local steps", "E = {:g}")}


def _attack_cells(row: dict) -> str:
    """PSNR/SSIM of the three attacks: PSNR shown up to 99 dB (beyond, round-off), 1 decimal below 20 dB."""
    cells = []
    for attack in ("closed_form", "span", "optimisation"):
        psnr, ssim = min(row[f"psnr_{attack}"], 99.0), row[f"ssim_{attack}"]
        cells.append(f"{psnr:.0f} dB" if psnr >= 20 else f"{psnr:.1f} dB")
        cells[-1] += " / " + f"{ssim:.2f}".replace("-0.00", "0.00")
    return " | ".join(cells)


def defences(_: str) -> str:
    """Chapter 07's summary from ``defences.json`` (``benchmarks/defences.py``): no defence, clipping
    alone (DP-SGD at σ = 0), then every defence at its recommended setting."""
    report = load("defences")
    if report is None:
        return f"\n{NOT_MEASURED}: run `python benchmarks/defences.py --threads 1`\n"
    s, rows = report["settings"], report["rows"]
    width = re.search(r"width=(\d+)", s["lab"])
    if width is None:
        raise ValueError(f"defences.json: settings.lab {s['lab']!r} names no width=N")
    h = int(width.group(1))
    plain = next(r for r in rows if r["defence"] == "prune" and r["strength"] == 0)  # the message as sent
    baseline = next(r for r in rows if r["defence"] == "none")
    clipped = next(r for r in rows if r["defence"] == "dp" and r["strength"] == 0)
    lines = ["| defence | setting | closed form PSNR/SSIM | span attack | optimisation attack "
             "| test accuracy | ε (δ = 1e-5) |", "|---|---|---|---|---|---|---|",
             f"| none | — | {_attack_cells(plain)} | {baseline['accuracy']:.2f} | — |",
             f"| clipping only (C = 1) | σ = 0 | {_attack_cells(clipped)} | {clipped['accuracy']:.2f} | — |"]
    for r in (r for r in rows if r.get("recommended")):
        title, setting = DEFENCE_ROWS[r["defence"]]
        epsilon = "—" if r["epsilon"] is None else f"{r['epsilon']:.1f}"
        lines.append(f"| {title} | {setting.format(r['strength'], h=h)} | {_attack_cells(r)} | "
                     f"{r['accuracy']:.2f} | {epsilon} |")
    mode = "Smoke" if s.get("smoke") else "Full"
    return (f"\n{mode} profile of `python benchmarks/defences.py --threads {s['threads']}` "
            f"({s['total_seconds']:.0f} s): MNIST sample pack, sigmoid\nMLP 784→{h}→10, {s['n_clients']} "
            f"clients × 40 digits, batch {s['batch_size']}, {s['rounds']} FedSGD rounds; attacks "
            f"{s['steps']} steps with the true labels.\n\n" + "\n".join(lines) + "\n\n")


BLOCKS: dict[str, Callable[[str], str]] = {"course-map": course_map, "notebook-times": notebook_times,
                                           "performance": performance, "victims": victims,
                                           "federation": federation, "defences": defences,
                                           "table-full": table_full, "table-full-runs": table_full_runs}


def render(text: str) -> str:
    """README text with every generated block recomputed from the results."""
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->)(.*?)(<!-- end: {name} -->)", re.S)
        match = pattern.search(text)
        if match:
            text = text[:match.start(2)] + make(match.group(2)) + text[match.end(2):]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that README.md is up to date")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    before = args.readme.read_text()
    after = render(before)
    if args.check:
        if after != before:
            print(f"{args.readme} is out of date: run python scripts/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
