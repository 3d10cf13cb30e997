"""recon_lib — the library behind the course on input reconstruction in federated learning.

Built on Qian, Nassar & Hansen (2021), *Minimal Model Structure Analysis for Input
Reconstruction in Federated Learning* (arXiv 2010.15718). The data flow a learner follows:

    model + private data → ``fl.client_update`` (the message) → an attack in ``analytic`` or
    ``optimize`` (sees only model and message) → ``metrics`` and ``plot``.

Import it as ``import recon_lib as rl``.
"""
from . import analytic, conditions, conv, datasets, defences, fl, grading, metrics, models, newton, optimize, plot, privacy_utility, runtime, symbolic, widgets
from .runtime import device, pick, profile, seed_everything

__version__ = "0.1.0"
__all__ = ["analytic", "conditions", "conv", "datasets", "defences", "fl", "grading", "metrics", "models", "newton", "optimize", "plot", "privacy_utility", "runtime", "symbolic", "widgets",
           "device", "pick", "profile", "seed_everything"]
