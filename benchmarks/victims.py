"""Chapter 08's victims table: what the course's attacks recover from realistic Flower clients.

    python benchmarks/victims.py --seeds 10            # the stored full table (minutes on a CPU)
    python benchmarks/victims.py --seeds 2 --name victims_smoke --steps 200   # a quick look
    python benchmarks/victims.py --device cuda --engine replay   # attacks on a GPU: victims_cuda.json

First two Flower simulations (``flwr.simulation.run_simulation``, the curious server of
``recon_lib.flower``) train the sigmoid and the ReLU MLP on the MNIST sample pack
(``rl.victims.TRAINING``: 10 clients, FedAvg B = 40, E = 5, 20 rounds) and keep the global model
of every round with its test accuracy. Then every row of ``rl.victims.table_rows()`` is measured
over the seeds: each seed is another client (another model θ₀ at round 0), its message made by
the same client code and converted by the same server code as in the Flower run. Writes
``benchmarks/results/<name>.json`` (settings, accuracies, every row with per-image PSNR/SSIM)
and ``<name>.csv`` (one line per row), and prints the table. With ``--device cuda`` the attacks
and scoring run on the GPU and the files are ``<name>_cuda.json/.csv``; the Flower training (Ray's
worker processes) and each client's local update stay on the CPU, as a client's would.
"""
from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import recon_lib as rl  # noqa: E402
from benchmarks import common  # noqa: E402
from recon_lib import flower, victims  # noqa: E402

COLUMNS = ("group", "label", "attack", "round", "psnr_median", "ssim_median", "frac_40db", "frac_20db",
           "dead_units", "median_abs_db", "rank_dw", "n_failed", "condition", "seconds")


def train(activation: str, engine: str) -> tuple[dict, list[float], float]:
    """One training run; returns the global weights per round, test accuracy per round, seconds.

    ``engine="flower"`` runs it in a Flower simulation; ``"replay"`` replays the same FedAvg rounds
    with the same client code and no transport (``rl.victims.replay_fedavg``), for a machine too
    loaded for Ray to start.
    """
    setup = victims.TRAINING.replace(activation=activation)
    start = time.perf_counter()
    history = (flower.simulate(setup, keep_messages=False).history if engine == "flower"
               else victims.replay_fedavg(setup))
    seconds = time.perf_counter() - start
    x, y = flower.test_set(setup)
    accuracies = [victims.accuracy(victims.global_model(setup, history, r), x, y)
                  for r in range(setup.rounds + 1)]
    return history, accuracies, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds (clients) per row")
    parser.add_argument("--steps", type=int, default=None, help="cap on the gradient-matching steps")
    parser.add_argument("--name", default="victims", help="results file stem")
    parser.add_argument("--engine", choices=["flower", "replay"], default="flower",
                        help="train in a Flower simulation, or replay FedAvg without Ray (either on the CPU)")
    common.add_device_argument(parser)
    args = parser.parse_args()
    device = common.chosen_device(args.device)
    torch.set_num_threads(1)
    start = time.perf_counter()
    histories, accuracy, train_seconds = {}, {}, {}
    for activation in ("sigmoid", "relu"):
        trained = train(activation, args.engine)
        histories[activation], accuracy[activation], train_seconds[activation] = trained
        print(f"{activation}: test accuracy by round {[round(a, 2) for a in accuracy[activation]]} "
              f"({train_seconds[activation]:.0f} s, engine {args.engine})", flush=True)
    rows = []
    for row in victims.table_rows():
        common.synchronize(device)
        tic = time.perf_counter()
        run = "relu" if row.setup.activation == "relu" else "sigmoid"
        history = histories[run] if row.server_round else None
        result = victims.measure(row, list(range(args.seeds)), history=history, steps=args.steps,
                                  device=device)
        common.synchronize(device)
        result["seconds"] = time.perf_counter() - tic
        rows.append(result)
        print(" | ".join(f"{result[k]:.3g}" if isinstance(result[k], float) else str(result[k])
                         for k in COLUMNS[:12]), f"| {result['seconds']:.0f} s", flush=True)
    settings = {"command": "python benchmarks/victims.py " + " ".join(sys.argv[1:]),
                "seeds": args.seeds, "steps": args.steps, "engine": args.engine,
                "training": victims.TRAINING.to_config(),
                "mnist": victims.MNIST.to_config(), "cifar100": victims.CIFAR.to_config(),
                "seconds": time.perf_counter() - start, "training_seconds": train_seconds,
                "torch": torch.__version__, "flwr": _version("flwr"), "ray": _version("ray"),
                "machine": platform.processor() or platform.machine(), "threads": 1,
                "profile": rl.profile(), "device": device.type, "where": common.machine(device)}
    out = common.results_path(args.name, device)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"settings": settings, "accuracy": accuracy, "rows": rows}, indent=1))
    with open(out.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out.with_suffix('')}.json/.csv in {settings['seconds']:.0f} s")


def _version(name: str) -> str:
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    main()
