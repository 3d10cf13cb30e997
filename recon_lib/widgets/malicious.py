"""Chapter 09 explorer and measurements: the imprint's recovered fraction vs bins, B, statistic.

Plain functions (tested without a browser), shared by the notebook and ``benchmarks/imprint.py``:

* :func:`run_case` — one planted model, one batch of real images, one message (or a secure
  aggregate of N clients): what comes back, scored against the private batch;
* :func:`span_bound` — the honest server's best case at the same B: the fraction of the batch
  inside the span leaked by a plain h-unit first layer (``rl.span.batch_span``; chapter 02);
* :func:`describe`, :func:`figure`, :func:`explorer` — a line, a figure, the sliders.
"""
from __future__ import annotations

import time
from typing import cast

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .. import defences, fl, imprint, metrics, models, plot, span

EXACT_DB = 40.0  # "recovered exactly": PSNR at least this


def victim(shape: tuple[int, ...], seed: int = 0, width: int = 32, classes: int = 100) -> torch.nn.Module:
    """The honest model the server would send: a ReLU MLP with ``width`` first-layer units."""
    torch.manual_seed(seed)
    return models.mlp(shape, [width], classes, activation="relu")


def run_case(bins: int, batch: int, statistic: str = "brightness", data: str = "cifar100", *,
             clients: int = 1, side: int | None = None, seed: int = 0,
             device: torch.device | str = "cpu") -> dict:
    """Plant ``bins`` units, send it to ``clients`` clients of ``batch`` images each, attack.

    Everything (images, planted model, messages, attack) sits on ``device``.

    Returns:
        ``{"x", "x_hat" (recovered, matched to their originals), "psnr" (per recovered image),
        "fraction" (of all clients' images at ≥ 40 dB), "alone" (fraction truly alone in its bin),
        "expected" (binomial), "collisions", "seconds" (the attack only), "bins", "batch", …}``.
    """
    x, y = (t.to(device) for t in imprint.sample_batch(data, batch * clients, seed=seed, side=side))
    shape = tuple(x.shape[1:])
    classes = max(100, int(y.max()) + 1)  # CIFAR-100 fine labels; ImageNet class ids up to 999
    planted = imprint.attach(victim(shape, seed, classes=classes).to(device), shape, bins, statistic, seed)
    # secure aggregation: the server sees only the mean of the clients' messages (one client at a
    # time here, so 64 clients of a 1024-bin layer fit in memory; rl.defences.secure_aggregate is
    # the same mean over a stacked tensor, as the tests check)
    message = fl.client_update(planted, x[:batch], y[:batch])
    for i in range(1, clients):
        part = fl.client_update(planted, x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
        message = {k: g + part[k] for k, g in message.items()}
    message = {k: g / clients for k, g in message.items()}
    start = time.perf_counter()
    found = imprint.recover(planted, message)
    seconds = time.perf_counter() - start
    bins_of = cast(imprint.Imprint, planted[0]).bin_of(x)  # attach plants it as module 0
    counts = torch.bincount(bins_of, minlength=bins)
    owner = [int((bins_of == b).nonzero()[0, 0]) for b in found.bins]
    psnr = (metrics.psnr(found.images.float(), x[owner]) if owner else torch.zeros(0))
    return {"x": x, "x_hat": found.images.float(), "originals": x[owner], "psnr": psnr,
            "fraction": float((psnr >= EXACT_DB).sum()) / len(x),
            "alone": float((counts[bins_of] == 1).float().mean()),
            "expected": imprint.expected_fraction(len(x), bins), "collisions": len(found.collisions),
            "seconds": seconds, "bins": bins, "batch": batch, "clients": clients, "statistic": statistic,
            "data": data}


def span_bound(batch: int, width: int = 32, data: str = "cifar100", seed: int = 0,
               side: int | None = None, device: torch.device | str = "cpu") -> float:
    """Fraction of the batch an honest server could at best rebuild from a ``width``-unit layer.

    Each image's projection onto the leaked span (``rl.span.batch_span``) is the best any
    span attack can return; it is exact (≥ 40 dB) for the whole batch when B ≤ h and for none
    of it once B > h (the span has only h of the B directions).
    """
    x, y = (t.to(device) for t in imprint.sample_batch(data, batch, seed=seed, side=side))
    model = victim(tuple(x.shape[1:]), seed, width, classes=max(100, int(y.max()) + 1)).to(device)
    message = fl.client_update(model.double(), x.double(), y)
    basis = span.batch_span(message["1.weight"], message["1.bias"], batch)
    flat = x.double().flatten(1)
    projected = (flat @ basis @ basis.T).reshape(x.shape)
    return float((metrics.psnr(projected, x.double()) >= EXACT_DB).float().mean())


def dp_case(sigma: float, bins: int = 128, batch: int = 16, *, clip: float = 1.0, gain: float = imprint.GAIN,
            seed: int = 0, device: torch.device | str = "cpu") -> dict:
    """The imprint against DP-SGD (chapter 07's ``rl.defences.dp_update``, Opacus): per-sample
    clipping to ``clip`` and noise σ·clip. Returns the verified fraction and the best PSNR of the
    raw candidates of bins that truly held one image (what the server could at most get)."""
    x, y = (t.to(device) for t in imprint.sample_batch("cifar100", batch, seed=seed))
    planted = imprint.attach(victim((3, 32, 32), seed).to(device), (3, 32, 32), bins, seed=seed, gain=gain)
    generator = torch.Generator().manual_seed(seed)
    message = defences.dp_update(planted, x, y, clip=clip, noise_multiplier=sigma, generator=generator)
    found = imprint.recover(planted, message, batch_size=batch)
    bins_of = cast(imprint.Imprint, planted[0]).bin_of(x)  # attach plants it as module 0
    counts = torch.bincount(bins_of, minlength=bins)
    lone = (counts[bins_of] == 1).nonzero().flatten()
    raw = metrics.psnr(found.candidates[bins_of[lone]].float().clamp(0, 1), x[lone])
    return {"sigma": sigma, "gain": gain, "fraction": len(found.bins) / batch,
            "best_raw_psnr": float(raw.max()) if len(raw) else float("nan"),
            "median_raw_psnr": float(raw.median()) if len(raw) else float("nan")}


def trap_case(batch: int, width: int = 1024, rate: float = 0.02, seed: int = 0,
              device: torch.device | str = "cpu") -> dict:
    """Trap weights (Boenisch et al. 2023) in an ordinary ReLU MLP: fraction of the batch caught.

    The client's update runs on ``device``; the recovery reads the candidates back on the CPU.
    """
    x, y = imprint.sample_batch("cifar100", batch, seed=seed)
    torch.manual_seed(seed)
    model = imprint.trap(models.mlp((3, 32, 32), [width, 64], 100, activation="relu"), seed, rate=rate)
    model, x, y = model.to(device), x.to(device), y.to(device)
    found = imprint.recover_trapped(model, fl.client_update(model, x, y))
    if len(found) == 0:
        return {"batch": batch, "width": width, "rate": rate, "fraction": 0.0, "returned": 0}
    distance = torch.cdist(found.flatten(1).float(), x.flatten(1).cpu())
    psnr = 10 * torch.log10(x[0].numel() / distance.min(1).values.square())
    exact = distance.argmin(1)[psnr >= EXACT_DB].unique().numel()
    return {"batch": batch, "width": width, "rate": rate, "fraction": exact / batch, "returned": len(found)}


def describe(row: dict) -> str:
    """One line: settings, recovered fraction, binomial expectation, collisions, time."""
    who = f"{row['clients']} clients × B = {row['batch']}" if row["clients"] > 1 else f"B = {row['batch']}"
    return (f"{row['bins']} bins ({row['statistic']}), {who} {row['data']} images: "
            f"{row['fraction']:.0%} recovered at ≥ {EXACT_DB:.0f} dB (binomial expectation "
            f"{row['expected']:.0%}), {row['collisions']} collision bins flagged")


def figure(row: dict, max_images: int = 6) -> Figure:
    """Recovered images under their originals, PSNR in the titles."""
    count = min(max_images, len(row["x_hat"]))
    if count == 0:
        fig = plt.figure(figsize=(6, 1))
        fig.suptitle(describe(row) + "\n(nothing recovered)", fontsize=8)
        return fig
    images = [*row["originals"][:count], *row["x_hat"][:count]]
    titles = ([f"private {i + 1}" for i in range(count)]
              + [f"{float(p):.0f} dB" for p in row["psnr"][:count]])
    return plot.grid(images, titles, ncols=count, title=describe(row).replace(": ", ":\n", 1), size=1.6)


def explorer(data: str = "cifar100"):
    """Sliders for bins, B and the statistic that re-run :func:`run_case` (ipywidgets)."""
    import ipywidgets as widgets

    def update(bins: int, batch: int, statistic: str) -> None:
        figure(run_case(bins, batch, statistic, data))
        plt.show()

    return widgets.interactive(
        update, bins=widgets.IntSlider(value=128, min=8, max=512, step=8, description="bins"),
        batch=widgets.IntSlider(value=64, min=1, max=128, description="batch B"),
        statistic=widgets.Dropdown(options=list(imprint.STATISTICS), description="statistic"))
