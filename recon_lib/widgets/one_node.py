"""Chapter 01 explorer: the one-hidden-node attack re-run for any depth, activation and width.

The logic is plain functions that tests call without a browser:

* :func:`victim` builds a reproducible fully connected model (``rl.models.mlp``);
* :func:`run_case` plays client and server once: the client's message, the closed form
  (``rl.analytic.reconstruct``), the error, and δ = ∂ℓ/∂b of the first layer;
* :func:`format_table` prints many cases as a plain-text table (the chapter's ≥ 40 checks);
* :func:`fitted_sweep` scales the head of a model that already predicts the sample's label,
  so the margin grows and δ shrinks toward 0: the "well-fitted sample" failure mode;
* :func:`explorer` wires sliders to :func:`run_case` (ipywidgets).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.nn import functional as F

from .. import analytic, fl, models, plot

Loss = Callable[[Tensor, Tensor], Tensor]


def one_hot_mse(outputs: Tensor, y: Tensor) -> Tensor:
    """Mean squared error between the outputs and the one-hot target (a regression-style loss)."""
    return F.mse_loss(outputs, F.one_hot(y, outputs.shape[-1]).to(outputs.dtype))


LOSSES: dict[str, Loss] = {"cross_entropy": F.cross_entropy, "mse": one_hot_mse}


def victim(in_shape: Sequence[int], depth: int, activation: str, width: int, n_classes: int = 10,
           seed: int = 0, dtype: torch.dtype = torch.float32, bias: bool = True) -> nn.Sequential:
    """A ``depth``-hidden-layer MLP of constant ``width``, initialised from ``seed``.

    The global random state is left untouched (``fork_rng``), so a notebook's later cells do
    not depend on how many models the explorer built before.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1 hidden layer, got {depth}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = models.mlp(in_shape, [width] * depth, n_classes, activation=activation, bias=bias)
    return model.to(dtype)


def _check_image(image: Tensor, label: int, n_classes: int) -> None:
    if not isinstance(image, Tensor) or image.ndim != 3:
        raise TypeError(f"image must be one C×H×W tensor, got {getattr(image, 'shape', type(image))}")
    if not 0 <= int(label) < n_classes:
        raise ValueError(f"label {label} is not one of the {n_classes} classes")


def run_case(image: Tensor, label: int, *, depth: int, activation: str, width: int,
             n_classes: int = 10, loss: str = "cross_entropy", seed: int = 0,
             dtype: torch.dtype = torch.float32) -> dict:
    """Client sends its message; the server applies the closed form. One row of the table.

    Args:
        image: the private C×H×W image in [0, 1].
        label: its class.
        depth, activation, width, n_classes, seed, dtype: the victim model (:func:`victim`).
        loss: a key of :data:`LOSSES`.

    Returns:
        A dict with the settings, ``x_hat`` (C×H×W, or None when the attack is impossible),
        ``max_error`` (max |x̂ − x|, NaN if impossible), ``delta_max`` (largest |δᵢ|),
        ``n_usable`` (units with δᵢ ≠ 0) and ``error`` (the library's message, or None).
    """
    _check_image(image, label, n_classes)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)}")
    model = victim(image.shape, depth, activation, width, n_classes, seed, dtype).to(image.device)
    x = image.to(dtype).unsqueeze(0)
    message = fl.client_update(model, x, torch.tensor([int(label)], device=image.device), LOSSES[loss])
    name, _ = analytic.first_layer(model)
    delta = message[f"{name}.bias"]
    row = dict(depth=depth, activation=activation, width=width, n_classes=n_classes, loss=loss,
               seed=seed, dtype=str(dtype).replace("torch.", ""), delta_max=float(delta.abs().max()),
               n_usable=int(analytic.usable_units(delta).sum()), x_hat=None,
               max_error=math.nan, error=None)
    try:
        x_hat = analytic.reconstruct(model, message)
    except ValueError as error:
        row["error"] = str(error)
        return row
    row["x_hat"] = x_hat
    row["max_error"] = float((x_hat - x[0]).abs().max())
    return row


def format_table(rows: Iterable[dict], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` (floats in scientific notation with 1 digit)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.1e}"
        return str(value)

    body = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def describe(row: dict) -> str:
    """One line that says what happened in a case."""
    settings = f"depth {row['depth']}, {row['activation']}, width {row['width']}, seed {row['seed']}"
    if row["error"] is not None:
        return f"{settings}: attack impossible — {row['error']}"
    return (f"{settings}: {row['n_usable']}/{row['width']} usable units, "
            f"max |δ| = {row['delta_max']:.1e}, max |x̂ − x| = {row['max_error']:.1e}")


def figure(image: Tensor, row: dict) -> Figure:
    """Original beside the reconstruction of one case (``rl.plot.compare``)."""
    if row["x_hat"] is None:
        raise ValueError(f"nothing to show: {row['error']}")
    title = f"depth {row['depth']}, {row['activation']}, width {row['width']}, {row['loss']}"
    return plot.compare(image, row["x_hat"].to(image.dtype), title)


def _scaled_head(model: nn.Sequential, scale: float) -> nn.Sequential:
    scaled = copy.deepcopy(model)
    _, head = analytic.last_linear(scaled)
    with torch.no_grad():
        head.weight.mul_(scale)
        if head.bias is not None:
            head.bias.mul_(scale)
    return scaled


def fitted_sweep(image: Tensor, scales: Sequence[float], dtype: torch.dtype = torch.float32,
                 depth: int = 2, activation: str = "sigmoid", width: int = 16,
                 n_classes: int = 10, seed: int = 0) -> dict[str, Tensor]:
    """How a confidently fitted sample drives δ to 0, and what that does to the closed form.

    The sample's label is the class the model already predicts; multiplying the head's
    weights and bias by ``scale`` multiplies the logit margin, so the cross-entropy gradient
    p − onehot(y), and with it every δᵢ, shrinks like exp(−margin). For each scale the raw
    per-unit ratio of the unit with the largest |δᵢ| is compared with x (no tolerance: we
    want to *see* what happens once δ·x is no longer a normal floating-point number).

    Returns:
        Tensors over the scales: ``margin`` (logit of the label minus the best other),
        ``delta_max`` (largest |δᵢ|), ``max_error`` (max |x̂ − x|, NaN where δ = 0 exactly)
        and ``usable`` (whether ``rl.analytic.reconstruct`` accepts the message).
    """
    _check_image(image, 0, n_classes)
    base = victim(image.shape, depth, activation, width, n_classes, seed, dtype).to(image.device)
    x = image.to(dtype).unsqueeze(0)
    with torch.no_grad():
        label = base(x).argmax(-1)
    name, _ = analytic.first_layer(base)
    out: dict[str, list[float]] = {key: [] for key in ("margin", "delta_max", "max_error", "usable")}
    for scale in scales:
        model = _scaled_head(base, scale)
        with torch.no_grad():
            logits = model(x)[0].to(torch.float64)
        others = torch.cat([logits[:label], logits[label + 1:]])
        message = fl.client_update(model, x, label)
        grad_weight, grad_bias = message[f"{name}.weight"], message[f"{name}.bias"]
        ratios, _ = analytic.unit_estimates(grad_weight, grad_bias, tol=0.0)
        best = grad_bias.abs().argmax()
        zero = bool(grad_bias[best] == 0)
        out["margin"].append(float(logits[label] - others.max()))
        out["delta_max"].append(float(grad_bias.abs().max()))
        out["max_error"].append(math.nan if zero else float((ratios[best] - x.flatten()).abs().max()))
        out["usable"].append(bool(analytic.usable_units(grad_bias).any()))
    return {key: torch.tensor(values, dtype=torch.float64 if key != "usable" else torch.bool)
            for key, values in out.items()}


def training_sweep(image: Tensor, label: int, steps: int, lr: float = 0.5, every: int = 1,
                   depth: int = 2, activation: str = "sigmoid", width: int = 16,
                   n_classes: int = 10, seed: int = 0,
                   dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Train the victim on the one sample with SGD and attack its message as it learns.

    The loop over steps is inherently sequential (each step needs the previous weights). Every
    ``every`` steps the client's message is attacked in closed form.

    Returns:
        Tensors over the recorded steps: ``step``, ``loss``, ``delta_max`` and ``max_error``.
    """
    _check_image(image, label, n_classes)
    model = victim(image.shape, depth, activation, width, n_classes, seed, dtype).to(image.device)
    x, y = image.to(dtype).unsqueeze(0), torch.tensor([int(label)], device=image.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    name, _ = analytic.first_layer(model)
    out: dict[str, list[float]] = {key: [] for key in ("step", "loss", "delta_max", "max_error")}
    for step in range(steps + 1):
        if step % every == 0:
            message = fl.client_update(model, x, y)
            with torch.no_grad():
                out["loss"].append(float(F.cross_entropy(model(x), y)))
            out["step"].append(step)
            out["delta_max"].append(float(message[f"{name}.bias"].abs().max()))
            x_hat = analytic.reconstruct(model, message)
            out["max_error"].append(float((x_hat - x[0]).abs().max()))
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return {key: torch.tensor(values, dtype=torch.float64) for key, values in out.items()}


def explorer(image: Tensor, label: int, n_classes: int = 10, max_depth: int = 10,
             max_width: int = 64):
    """Sliders for depth, activation, width and seed that re-run the attack (ipywidgets)."""
    import ipywidgets as widgets

    def update(depth: int, activation: str, width: int, seed: int) -> None:
        row = run_case(image, label, depth=depth, activation=activation, width=width,
                       n_classes=n_classes, seed=seed)
        print(describe(row))
        if row["x_hat"] is not None:
            figure(image, row)
            plt.show()

    return widgets.interactive(
        update,
        depth=widgets.IntSlider(value=3, min=1, max=max_depth, description="depth"),
        activation=widgets.Dropdown(options=sorted(models.ACTIVATIONS), value="sigmoid",
                                    description="activation"),
        width=widgets.IntSlider(value=8, min=1, max=max_width, description="width h"),
        seed=widgets.IntSlider(value=0, min=0, max=20, description="seed"))
