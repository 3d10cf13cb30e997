"""recon_lib — the library behind the course on input reconstruction in federated learning.

Built on Qian, Nassar & Hansen (2021), *Minimal Model Structure Analysis for Input
Reconstruction in Federated Learning* (arXiv 2010.15718). The data flow a learner follows:

    model + private data → ``fl.client_update`` (the message) → an attack in ``analytic``,
    ``newton`` or ``optimize`` (sees only model and message) → ``metrics`` and ``plot``.

Modules, by chapter: ``fl``, ``models`` (00–01); ``analytic``, ``symbolic`` (01–03);
``conditions``, ``newton`` (02–03); ``conv`` (03); ``optimize``, ``lbfgs`` (02, 04);
``datasets``, ``sources`` (all); ``benchmark``, ``distortions`` (06); ``defences``, ``privacy_utility`` (07);
``flower``, ``deployment``, ``victims`` (08, imported on first use);
``metrics``, ``plot``, ``widgets``, ``grading``, ``runtime`` (all).

Import it as ``import recon_lib as rl``.
"""
from . import (analytic, benchmark, conditions, conv, datasets, defences, distortions, fl, grading,
               lbfgs, metrics, models, newton, optimize, plot, privacy_utility, runtime, sources, symbolic,
               widgets)
from .runtime import device, pick, profile, progress_bar, seed_everything

# Chapter 08's modules import Flower (and through it gRPC and Ray): loaded on first use, so that
# `import recon_lib` stays fast for chapters 00-07.
_LAZY = ("flower", "deployment", "victims")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = ["analytic", "benchmark", "conditions", "conv", "datasets", "defences", "distortions", "fl",
           "grading",
           "lbfgs", "metrics", "models", "newton", "optimize", "plot", "privacy_utility", "runtime",
           "sources", "symbolic", "widgets", "device", "pick", "profile", "progress_bar",
           "seed_everything"]
