"""Chapter 08 explorer: one client of a Flower federation, seen by the curious server.

The logic is plain functions that tests call without a browser:

* :func:`run_case` builds the victim (activation, BatchNorm mode, batch size B, local steps E),
  takes the global model of a chosen round of a training run (or θ₀), lets the client make its
  reply with the federation's own code (:func:`recon_lib.victims.client_message`), and runs the
  attack that applies: chapter 01's closed form for one image, chapter 02's span solver for a
  batch;
* :func:`describe` turns the result into one line, naming the condition that failed;
* :func:`figure` shows the private images above the reconstructions;
* :func:`explorer` wires sliders and menus to them (ipywidgets).
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .. import plot, victims
from ..flower import Setup, State


def run_case(histories: Mapping[str, Mapping[int, State]], *, activation: str = "sigmoid",
             batchnorm: str = "none", local_steps: int = 1, server_round: int = 0, batch_size: int = 1,
             width: int = 64, seed: int = 0) -> dict:
    """One client's reply at one point of training, attacked and scored.

    Args:
        histories: ``{activation: global weights per round}`` of training runs (as kept by
            :class:`recon_lib.flower.CuriousFedAvg`); rounds > 0 need the activation's run and
            ``batchnorm="none"``, ``width`` 64 (the trained architecture).
        activation, batchnorm, local_steps, batch_size, width: the victim.
        server_round: the global model after this many rounds (0 = the initial weights).
        seed: which client and round of private data.

    Returns:
        ``{"setup", "round", "attack", "x", "x_hat", "psnr" (list), "ssim" (list), "failure"
        (None or the attack's error), "dead_units", "median_abs_db", "rank_dw"}``.
    """
    setup = victims.MNIST.replace(activation=activation, batchnorm=batchnorm, local_steps=local_steps,
                                  batch_size=batch_size, width=width, seed=seed if not server_round else 0)
    history = None
    if server_round:
        if activation not in histories or batchnorm != "none" or width != victims.TRAINING.width:
            raise ValueError(f"no training run for a {activation} MLP h={width} with BatchNorm {batchnorm}; "
                             "trained rounds exist for the chapter's runs only (round 0 works for all)")
        history = histories[activation]
    model = victims.global_model(setup, history, server_round)
    partition, private_round = seed % setup.n_clients, server_round + 1 + 1000 * seed
    message, x, _ = victims.client_message(model, setup, partition, private_round)
    attack = "closed_form" if batch_size == 1 else "span"
    failure, x_hat = None, x.new_zeros((1, *x.shape[1:]))
    try:
        x_hat = victims.run_attack(attack, model, message, batch_size, seed=seed)
    except (ValueError, TypeError, RuntimeError) as error:
        failure = f"{type(error).__name__}: {str(error).splitlines()[0]}"
    psnr, ssim = victims.score(x_hat, x) if failure is None else ([0.0] * len(x), [0.0] * len(x))
    return {"setup": setup, "round": server_round, "attack": attack, "x": x,
            "x_hat": x_hat.detach().clamp(0, 1), "psnr": psnr, "ssim": ssim, "failure": failure,
            **victims.diagnostics(model, message)}


def condition(row: dict) -> str:
    """The condition of chapters 01–02 that decides this case, in words."""
    setup: Setup = row["setup"]
    if setup.batchnorm == "train":
        return f"BatchNorm in train mode: ∂b = Σδ = 0 (median |∂b| = {row['median_abs_db']:.1g})"
    if setup.batch_size > 1:
        holds = "holds" if setup.width >= setup.batch_size else "fails"
        extra = "" if setup.local_steps == 1 else f"; E = {setup.local_steps} steps are not one gradient"
        return f"h ≥ B {holds} (rank ∇W = {row['rank_dw']:.0f}, B = {setup.batch_size}){extra}"
    return f"δ ≠ 0 at {100 * (1 - row['dead_units']):.0f}% of the first-layer units"


def describe(row: dict) -> str:
    """One line: the victim, the attack, PSNR per image (median), and the condition."""
    setup: Setup = row["setup"]
    good = sum(p >= victims.RECOVERED_DB[0] for p in row["psnr"])
    result = (f"failed ({row['failure'][:60]})" if row["failure"] else
              f"{good}/{len(row['psnr'])} images ≥ 40 dB, best {max(row['psnr']):.0f} dB")
    return (f"{setup.activation}, BatchNorm {setup.batchnorm}, B={setup.batch_size}, E={setup.local_steps}, "
            f"round {row['round']}: {row['attack']} {result}. {condition(row)}")


def figure(row: dict, max_images: int = 4) -> Figure:
    """Up to ``max_images`` private images above what the server rebuilt, PSNR in each title."""
    x, x_hat = row["x"][:max_images], row["x_hat"][:max_images]
    titles = [f"private {i + 1}" for i in range(len(x))]
    titles += [f"rebuilt, {p:.0f} dB" for p in row["psnr"][:len(x_hat)]]
    return plot.grid([*x, *x_hat], titles, ncols=max(len(x), len(x_hat), 2),
                     title=describe(row).replace(": ", ":\n", 1), size=2.2)


def explorer(histories: Mapping[str, Mapping[int, State]]):
    """Menus and sliders (rounds, activation, BatchNorm mode, E, B) that re-run :func:`run_case`."""
    import ipywidgets as widgets

    rounds = max((max(h) for h in histories.values()), default=0)

    def update(activation: str, batchnorm: str, local_steps: int, server_round: int, batch_size: int) -> None:
        trained = server_round and (batchnorm != "none" or activation not in histories)
        if trained:
            print("trained rounds exist for the chapter's runs only: BatchNorm none, "
                  f"activations {sorted(histories)}")
            return
        if batchnorm == "train" and batch_size < 2:
            print("BatchNorm in train mode needs B ≥ 2")
            return
        figure(run_case(histories, activation=activation, batchnorm=batchnorm, local_steps=local_steps,
                        server_round=server_round, batch_size=batch_size))
        plt.show()

    return widgets.interactive(
        update,
        activation=widgets.Dropdown(options=["sigmoid", "relu", "leaky_relu"], description="activation"),
        batchnorm=widgets.Dropdown(options=["none", "eval", "train"], description="BatchNorm"),
        local_steps=widgets.SelectionSlider(options=[1, 2, 5, 10, 20], description="E"),
        server_round=widgets.IntSlider(min=0, max=rounds, value=0, description="round"),
        batch_size=widgets.SelectionSlider(options=[1, 2, 4, 8], description="B"))
