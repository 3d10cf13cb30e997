"""Chapter 07 explorer: pick a defence and its strength, see what the server still rebuilds.

The logic is plain functions that tests call without a browser:

* :func:`run_case` plays one defended client (:func:`recon_lib.defences.server_view`), runs the
  chosen attack on what the server receives, scores it, and optionally trains the model
  federatedly under the same defence for its test accuracy (the price);
* :func:`describe` turns the result into one line; :func:`figure` shows originals next to the
  reconstruction with PSNR/SSIM in the title;
* :func:`explorer` wires a defence menu, a strength slider (the defence's full sweep), an
  attack menu and a "train" box to them (ipywidgets).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .. import defences, plot, privacy_utility


def run_case(name: str, strength: float, lab: privacy_utility.Lab, *,
             attack: str = "closed_form", train: bool = False, seed: int = 0) -> dict:
    """One defended client, one attack, optionally the accuracy of training under the defence.

    Returns:
        ``{"name", "strength", "attack", "x" (private images), "x_hat" (reconstructions),
        "psnr", "ssim", "accuracy" (NaN unless ``train``), "epsilon"}``.
    """
    defence = defences.get(name)
    count = defence.clients(strength) * defence.batch(strength, 1)
    if count > len(lab.x_private):
        raise ValueError(f"{name} at {strength} needs {count} private images; the lab has "
                         f"{len(lab.x_private)}")
    x, y = lab.x_private[:count], lab.y_private[:count]
    message = defences.server_view(name, lab.model, x, y, strength, seed)
    x_hat = privacy_utility.attack(attack, lab.model, message, count, y, lab.steps, seed)
    psnr, ssim = privacy_utility.score(x_hat, x)
    row = privacy_utility.measure(name, strength, lab, attacks=(), train=train, seed=seed)
    return {"name": name, "strength": strength, "attack": attack, "x": x, "x_hat": x_hat,
            "psnr": psnr, "ssim": ssim, "accuracy": row.get("accuracy", math.nan),
            "epsilon": row["epsilon"]}


def describe(row: dict) -> str:
    """One line: defence, strength, attack, PSNR/SSIM, accuracy and ε where known."""
    defence = defences.get(row["name"])
    accuracy = "" if math.isnan(row["accuracy"]) else f", test accuracy {row['accuracy']:.2f}"
    epsilon = "" if math.isinf(row["epsilon"]) else f", ε = {row['epsilon']:.1f}"
    return (f"{defence.title}, {defence.knob} = {row['strength']:g}: {row['attack']} attack "
            f"PSNR {row['psnr']:.1f} dB, SSIM {row['ssim']:.2f}{accuracy}{epsilon}")


def figure(row: dict, max_images: int = 4) -> Figure:
    """Up to ``max_images`` private images above the attack's reconstructions."""
    x, x_hat = row["x"][:max_images], row["x_hat"][:max_images]
    images = [*x, *x_hat]
    titles = [f"private {i + 1}" for i in range(len(x))] + [f"rebuilt {i + 1}" for i in range(len(x_hat))]
    return plot.grid(images, titles, ncols=max(len(x), len(x_hat), 2),
                     title=describe(row).replace(": ", ":\n", 1), size=2.2)


def explorer(lab: privacy_utility.Lab):
    """Menus and a slider that re-run :func:`run_case` (ipywidgets)."""
    import ipywidgets as widgets

    names = list(defences.DEFENCES)
    strength = widgets.SelectionSlider(options=list(defences.DEFENCES[names[0]].full),
                                       description="strength")

    def follow(change: dict) -> None:
        strength.options = list(defences.DEFENCES[change["new"]].full)
        strength.description = defences.DEFENCES[change["new"]].knob[:12]

    menu = widgets.Dropdown(options=names, value=names[0], description="defence")
    menu.observe(follow, names="value")

    def update(name: str, strength: float, attack: str, train: bool) -> None:
        figure(run_case(name, strength, lab, attack=attack, train=train))
        plt.show()

    return widgets.interactive(
        update, name=menu, strength=strength,
        attack=widgets.Dropdown(options=list(privacy_utility.ATTACKS), description="attack"),
        train=widgets.Checkbox(value=False, description="train (slower)"))
