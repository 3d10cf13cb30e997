"""The benchmark's rows as tables (chapter 06): mean ± spread, Markdown, CSV, and statistics.

Pure functions of the rows :func:`recon_lib.benchmark.run` returns (dicts with a method, a
kind, the :data:`METRICS` and the :data:`IMAGE_STATS`): nothing here runs an attack.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from torch import Tensor

from . import metrics

METRICS = ("mse", "psnr", "ssim", "seconds")
IMAGE_STATS = ("tv", "contrast", "unknowns")


# --- Aggregating and writing ----------------------------------------------------------------
def _mean_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value); ∞ stays ∞ (a perfect copy)."""
    mean = sum(values) / len(values)
    if len(values) < 2 or math.isinf(mean):
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarise(rows: Sequence[Mapping], by: Sequence[str] = ("method", "kind")) -> list[dict]:
    """Mean ± spread (sample standard deviation over images and seeds) per group.

    Returns one dict per group, in first-seen order: the ``by`` keys, ``status``, ``n`` and
    ``<metric>_mean`` / ``<metric>_std`` for every metric of :data:`METRICS` the rows have.
    """
    if not rows:
        raise ValueError("no rows to summarise")
    groups: dict[tuple, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in by), []).append(row)
    summary = []
    for key, members in groups.items():
        entry = {**dict(zip(by, key, strict=True)), "status": members[0].get("status", ""), "n": len(members)}
        for metric in (m for m in METRICS if m in rows[0]):
            entry[f"{metric}_mean"], entry[f"{metric}_std"] = _mean_spread([r[metric] for r in members])
        summary.append(entry)
    return summary


def format_table(summary: Sequence[Mapping]) -> str:
    """A Markdown table (method, kind, n, MSE, PSNR, SSIM, seconds per image), mean ± spread.

    Stand-in data kinds are marked with an asterisk, e.g. ``kmnist*``.
    """
    lines = ["| method | kind | n | MSE | PSNR (dB) | SSIM | s / image |",
             "|---|---|---|---|---|---|---|"]
    for s in summary:
        kind = s["kind"] + ("*" if s.get("status") == "STAND-IN" else "")
        lines.append(f"| {s['method']} | {kind} | {s['n']} | "
                     f"{s['mse_mean']:.1e} ± {s['mse_std']:.0e} | "
                     f"{s['psnr_mean']:.1f} ± {s['psnr_std']:.1f} | "
                     f"{s['ssim_mean']:.3f} ± {s['ssim_std']:.3f} | "
                     f"{s['seconds_mean']:.2g} |")
    return "\n".join(lines)


def write_csv(rows: Sequence[Mapping], path: str | Path) -> Path:
    """Write rows (all with the same keys) to ``path`` with the csv module; returns the path."""
    if not rows:
        raise ValueError("no rows to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: str | Path) -> list[dict]:
    """Rows written by :func:`write_csv`, numbers converted back to int or float."""
    def number(text: str) -> object:
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    with Path(path).open(newline="") as handle:
        return [{key: number(value) for key, value in row.items()} for row in csv.DictReader(handle)]


# --- Reading the table (chapter 06 figures) ------------------------------------------------
def flat_baseline(x: Tensor) -> Tensor:
    """PSNR (per image) of a flat image at each image's own mean: what "no information" scores.

    A reference point, not an attack (the mean is private too): a reconstruction below it has
    recovered less than a uniform grey guess would. Equals 10·log10(1 / pixel variance).
    """
    flat = x.flatten(1).mean(1).reshape(-1, *[1] * (x.ndim - 1)).expand_as(x)
    return metrics.psnr(flat, x)


def extremes(rows: Sequence[Mapping], method: str) -> dict[str, tuple[Mapping, Mapping]]:
    """Per kind, the (best, worst) row of ``method`` by PSNR."""
    chosen = [r for r in rows if r["method"] == method]
    if not chosen:
        raise ValueError(f"no rows of method {method!r}")
    kinds = dict.fromkeys(r["kind"] for r in chosen)
    return {k: (max((r for r in chosen if r["kind"] == k), key=lambda r: r["psnr"]),
                min((r for r in chosen if r["kind"] == k), key=lambda r: r["psnr"])) for k in kinds}


def correlations(rows: Sequence[Mapping], method: str,
                 properties: Sequence[str] = IMAGE_STATS) -> dict[str, float]:
    """Spearman's ρ between each image property and the PSNR of ``method`` (scipy.stats)."""
    chosen = [r for r in rows if r["method"] == method]
    if len(chosen) < 3:
        raise ValueError(f"need at least 3 rows of {method!r} to correlate, got {len(chosen)}")
    psnr = [r["psnr"] for r in chosen]
    from scipy import stats  # local: scipy.stats takes a while to import

    return {p: float(stats.spearmanr([r[p] for r in chosen], psnr).statistic) for p in properties}
