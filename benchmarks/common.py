"""What every benchmark script shares: ``--device``, where results go, timing on CUDA."""
from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

M = TypeVar("M", bound=nn.Module)
RESULTS = Path(__file__).resolve().parent / "results"
CPU = torch.device("cpu")  # the default device of the measuring functions


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device cpu|cuda`` (default cpu: the course's reference figures are CPU figures)."""
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where the attacks run (cuda: results go to <name>_cuda.json)")


def chosen_device(name: str) -> torch.device:
    """The device asked for; exits with a clear message when CUDA is asked for but absent."""
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA device (torch.cuda.is_available() "
                         "is False); install a CUDA build of torch or use --device cpu")
    return torch.device(name)


def results_path(stem: str, device: torch.device | str, suffix: str = ".json") -> Path:
    """``benchmarks/results/<stem>.json`` on the CPU, ``<stem>_cuda.json`` on a GPU, so that
    the two sets of figures sit side by side (the README tables read both)."""
    kind = torch.device(device).type
    return RESULTS / f"{stem}{'' if kind == 'cpu' else '_' + kind}{suffix}"


def synchronize(device: torch.device | str) -> None:
    """Wait for queued CUDA work, so that a wall-clock time covers the computation itself."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def on(device: torch.device | str, model: M, message: Mapping[str, Tensor]) -> tuple[M, dict[str, Tensor]]:
    """The victim's model and message moved to ``device`` (the model is moved in place)."""
    return model.to(device), {k: v.to(device) for k, v in message.items()}


def machine(device: torch.device | str) -> dict:
    """Where a figure was taken: CPU threads, and the GPU's name on CUDA."""
    kind = torch.device(device).type
    return dict(platform=platform.platform(), processor=platform.processor(), cpu_count=os.cpu_count(),
                torch=torch.__version__, threads=torch.get_num_threads(), device=kind,
                gpu=torch.cuda.get_device_name() if kind == "cuda" else None)
