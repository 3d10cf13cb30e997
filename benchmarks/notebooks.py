"""Notebook times as a learner meets them and as CI runs them, quiet and with one core busy.

    python benchmarks/notebooks.py                        # every chapter, four conditions
    python benchmarks/notebooks.py --notebooks 04 06 --conditions learner-busy
    python benchmarks/notebooks.py --smoke                # chapter 00, learner-quiet: seconds

Each notebook of ``notebooks/`` runs top to bottom in a fresh kernel (nbclient), from a copy:
the stored outputs are never touched. Conditions:

* ``learner``: torch's default intra-op threads (``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``
  removed from the kernel's environment), the quick profile, progress bars on;
* ``ci``: exactly the settings nbval compares under (``scripts/notebook_env.py``: one thread);

each ``quiet`` and ``busy``: while the notebook runs, another process keeps one core busy
(a bounded busy-loop that exits on its own after ``--busy-limit`` seconds, as a browser or an
IDE beside the kernel would). ``--device cpu`` (default) hides CUDA, ``--device cuda`` keeps it.

Prints one row per notebook (seconds per condition, and the slowest cell of the slowest
condition) and writes ``benchmarks/results/notebooks[_<device>].json`` (merged with the runs
already stored there, each run with its command), from which ``scripts/readme_tables.py``
fills the README's course-map times. A cell that passes ``--timeout`` seconds, or fails, is
recorded as a failed run with the time it had used.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import chosen_device  # noqa: E402
from scripts.notebook_env import STORED_OUTPUT_ENV  # noqa: E402

CONDITIONS = ("learner-quiet", "learner-busy", "ci-quiet", "ci-busy")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
BUSY_LOOP = ("import time, sys\nend = time.monotonic() + float(sys.argv[1])\n"
             "while time.monotonic() < end: pass\n")


def environment(condition: str, device: str) -> dict[str, str]:
    """The kernel's environment for a condition (inherited from this process, then adjusted)."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    if condition.startswith("ci"):
        env.update(STORED_OUTPUT_ENV)
    else:
        for name in THREAD_VARIABLES:
            env.pop(name, None)
        env.update(RECON_PROFILE="quick", TQDM_DISABLE="", PYTHONHASHSEED="0")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    else:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def busy_core(limit: float) -> subprocess.Popen:
    """A process that keeps one core busy for at most ``limit`` seconds, then exits."""
    return subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(limit)])


def run(path: Path, condition: str, device: str, timeout: float, busy_limit: float) -> dict:
    """Execute one notebook under one condition; seconds in all and per cell (slowest first)."""
    notebook = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment(condition, device))  # the kernel inherits this process's env
    client = NotebookClient(notebook, timeout=int(timeout), kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    loop = busy_core(busy_limit) if condition.endswith("busy") else None
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except Exception as failure:  # noqa: BLE001 - a timeout or a failing cell: record, go on
        error = f"{type(failure).__name__}: {str(failure).splitlines()[0][:200] if str(failure) else ''}"
    finally:
        seconds = time.perf_counter() - start
        os.environ.clear()
        os.environ.update(saved)
        if loop is not None:
            loop.kill()
            loop.wait()
    cells = []
    for index, cell in enumerate(notebook.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        began, ended = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if began and ended:
            span = (datetime.fromisoformat(ended.rstrip("Z")) - datetime.fromisoformat(began.rstrip("Z")))
            cells.append(dict(cell=index, seconds=span.total_seconds()))
    cells.sort(key=lambda c: -c["seconds"])
    return dict(notebook=path.stem, condition=condition, seconds=seconds, ok=error is None,
                error=error, slowest_cells=cells[:3], load_average=os.getloadavg()[0])


def table(runs: list[dict], conditions: list[str]) -> str:
    """Seconds per notebook and condition; '>' marks a run that failed or timed out."""
    names = sorted({r["notebook"] for r in runs})
    head = ["notebook", *conditions, "slowest cell (s)"]
    rows = []
    for name in names:
        mine = {r["condition"]: r for r in runs if r["notebook"] == name}
        cells = [f"{'' if mine[c]['ok'] else '>'}{mine[c]['seconds']:.0f}" if c in mine else ""
                 for c in conditions]
        worst = max(mine.values(), key=lambda r: r["seconds"])
        slow = worst["slowest_cells"][0] if worst["slowest_cells"] else None
        where = f"{slow['cell']}: {slow['seconds']:.0f} ({worst['condition']})" if slow else ""
        rows.append([name, *cells, where])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
                     for line in [head, ["-" * w for w in widths], *rows])


def merged(out: Path, runs: list[dict]) -> list[dict]:
    """Earlier runs stored in ``out`` with these replaced (same notebook and condition), so
    that chapters and conditions can be measured in separate sessions."""
    fresh = {(r["notebook"], r["condition"]) for r in runs}
    old = json.loads(out.read_text())["runs"] if out.exists() else []
    return [r for r in old if (r["notebook"], r["condition"]) not in fresh] + runs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", default=None,
                        help="chapter numbers or names (default: every notebook in notebooks/)")
    parser.add_argument("--conditions", nargs="*", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--timeout", type=float, default=600, help="seconds per cell at most")
    parser.add_argument("--busy-limit", type=float, default=900,
                        help="the busy-loop process exits after this many seconds at most")
    parser.add_argument("--smoke", action="store_true", help="chapter 00, learner-quiet only")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.device == "cuda":
        chosen_device("cuda")  # a clear exit where PyTorch sees no GPU, before any kernel starts
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    wanted = ["00"] if args.smoke else args.notebooks
    if wanted:
        paths = [p for p in paths if any(p.stem.startswith(w) or p.stem == w for w in wanted)]
    conditions = ["learner-quiet"] if args.smoke else args.conditions
    command = " ".join(["python benchmarks/notebooks.py", *(argv if argv is not None else sys.argv[1:])])
    suffix = "" if args.device == "cpu" else f"_{args.device}"
    out = args.out or ROOT / "benchmarks" / "results" / f"notebooks{suffix}.json"
    runs: list[dict] = []
    report: dict = {}
    for path in paths:
        for condition in conditions:
            measured = run(path, condition, args.device, args.timeout, args.busy_limit)
            runs.append({**measured, "command": command})
            print(f"{path.stem} {condition}: {runs[-1]['seconds']:.1f} s"
                  f"{'' if runs[-1]['ok'] else ' FAILED ' + str(runs[-1]['error'])}", flush=True)
            report = dict(benchmark="notebooks", device=args.device,
                          machine=dict(platform=platform.platform(), cpu_count=os.cpu_count()),
                          runs=merged(out, runs))
            if not args.smoke or args.out:  # after every run: an interrupted session keeps its times
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(runs, conditions))
    return report


if __name__ == "__main__":
    main()
