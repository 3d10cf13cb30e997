"""How "instant" the exercise feedback is: the time of each ``rl.grading.check`` on CPU.

    python benchmarks/grading_checks.py     # prints a table, writes results/grading_checks.json

The answers timed are the solution notebooks' own functions (their solution cells, executed in
order), so the numbers are what a learner waits for after a correct answer; a wrong answer
stops at its first failing case and is faster. "first" includes loading the face images once;
"median" is the steady state over ``--repeats`` other seeds. Target: well under a second per
check. It also exits non-zero if a solution fails its own check on any of those seeds: such a
check would reject a right answer from a learner too. ``--device cuda`` makes CUDA torch's
default device (``torch.set_default_device``), as for a learner who works on a GPU.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import nbformat
import torch

matplotlib.use("Agg")  # setup cells may import pyplot; no windows from a benchmark
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import recon_lib.grading as grading  # noqa: E402
from benchmarks import common  # noqa: E402

CHECK = "rl.grading.check("


def solution_functions() -> dict[str, tuple[str, Callable[..., Any]]]:
    """{task id: (function name, function)} from every solution notebook.

    Runs each notebook's code cells up to its first task (the setup: imports, data) and then
    only its solution cells, so the functions see the names they were written against.
    """
    found = {}
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        namespace: dict = {}
        in_setup = True
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            in_setup = in_setup and not meta.get("solution")
            if cell.cell_type == "code" and (in_setup or meta.get("solution")):
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(cell.source, namespace)  # noqa: S102 - our own solution code
            elif meta.get("grade") and cell.source.startswith(CHECK):
                task_id, name = cell.source.splitlines()[0][len(CHECK):-1].split(", ")
                found[task_id.strip('"')] = (name, namespace[name])
    return found


def seconds(call) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        call()
    return time.perf_counter() - start


def measure(repeats: int) -> list[dict]:
    """One row per task; a seed on which the solution itself fails its check is recorded too."""
    rows = []
    for task_id, (name, function) in solution_functions().items():
        first = seconds(functools.partial(grading.check, task_id, function))
        times, failed = [], []
        for seed in range(1, repeats + 1):
            try:
                times.append(seconds(functools.partial(grading.check, task_id, function, seed=seed)))
            except grading.WrongAnswer:
                failed.append(seed)
        n_cases = grading.tasks()[task_id].n_cases
        median = statistics.median(times) if times else float("nan")
        rows.append({"task": task_id, "function": name, "cases": n_cases, "first_ms": round(1e3 * first, 1),
                     "median_ms": round(1e3 * median, 1), "per_case_ms": round(1e3 * median / n_cases, 1),
                     "solution_fails_seeds": failed})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="time each exercise check on CPU")
    parser.add_argument("--repeats", type=int, default=5)
    common.add_device_argument(parser)
    args = parser.parse_args()
    repeats, device = args.repeats, common.chosen_device(args.device)
    torch.set_default_device(device)
    rows = measure(repeats)
    print(f"{'task':18s} {'function':24s} {'cases':>5s} {'first ms':>9s} {'median ms':>10s} {'ms/case':>8s}")
    for r in rows:
        print(f"{r['task']:18s} {r['function']:24s} {r['cases']:5d} {r['first_ms']:9.1f} "
              f"{r['median_ms']:10.1f} {r['per_case_ms']:8.1f}")
    out = common.results_path("grading_checks", device)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "torch": torch.__version__,
                               "threads": torch.get_num_threads(), "repeats": repeats,
                               "device": device.type, "rows": rows,
                               "command": " ".join(["python benchmarks/grading_checks.py", *sys.argv[1:]])},
                              indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    broken = {r["task"]: r["solution_fails_seeds"] for r in rows if r["solution_fails_seeds"]}
    if broken:  # a check that rejects its own solution would also reject a right learner
        sys.exit(f"the solution fails its own check on seeds {broken}: fix the check")


if __name__ == "__main__":
    main()
