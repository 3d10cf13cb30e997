"""recon_lib — the library behind the course on input reconstruction in federated learning.

Built on Qian, Nassar & Hansen (2021), *Minimal Model Structure Analysis for Input
Reconstruction in Federated Learning* (arXiv 2010.15718). The data flow a learner follows:

    model + private data → ``fl.client_update`` (the message) → an attack in ``analytic``,
    ``cnn``, ``newton`` or ``optimize`` (sees only model and message) → ``metrics`` and ``plot``.

Modules, by chapter: ``fl``, ``models`` (00–01); ``analytic``, ``symbolic`` (01); ``labels``,
``span``, ``conditions``, ``newton`` (02); ``geometry``, ``conv``, ``cgls``, ``activations``,
``cnn``, ``head`` (03); ``optimize``, ``matching``, ``presets``, ``lbfgs`` (02, 04); ``datasets``, ``kinds``,
``sources``, ``archives`` (all); ``benchmark`` with ``benchmark_methods``, ``benchmark_tables``,
``benchmark_figures``, and ``distortions`` (06); ``defences``, ``defence_theory``,
``privacy_utility`` (07); ``flower``, ``deployment``, ``victims`` (08, they load Flower);
``imprint`` (09); ``metrics``, ``plot``, ``widgets``, ``grading``, ``course``, ``runtime``,
``verify``, ``errors`` (all).

Layers: a module imports only modules of lower layers (``tests/test_layers.py`` checks it by
parsing every import; a new module must be added here and there):

    layer 0: _validate, archives, errors, kinds, runtime
    layer 1: activations, cgls, defence_theory, fl, geometry, head, lbfgs, metrics, models, presets,
             sources, span, symbolic
    layer 2: analytic, conv, datasets, defences, matching, plot, verify
    layer 3: benchmark_tables, cnn, conditions, distortions, flower, imprint, labels
    layer 4: deployment, newton
    layer 5: optimize
    layer 6: benchmark_methods, privacy_utility, victims
    layer 7: benchmark_figures
    layer 8: benchmark
    layer 9: course, grading, widgets

Import it as ``import recon_lib as rl``. Submodules load on first use (``rl.analytic``,
``from recon_lib import benchmark``): ``import recon_lib`` itself loads only :mod:`runtime` and
:mod:`errors`, so that matplotlib, scipy, sympy, scikit-image, Opacus and Flower are imported
only by the chapters that need them (``tests/test_import_time.py``).
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ReconstructionError, ReconstructionWarning
from .runtime import device, pick, profile, progress_bar, seed_everything

__version__ = "0.1.0"
SUBMODULES = ("activations", "analytic", "archives", "benchmark", "benchmark_figures",
              "benchmark_methods", "benchmark_tables", "cgls", "cnn", "conditions", "conv", "course",
              "datasets", "defence_theory", "defences", "deployment", "distortions", "errors", "fl",
              "flower", "geometry", "grading", "head", "imprint", "kinds", "labels", "lbfgs", "matching",
              "metrics",
              "models", "newton", "optimize", "plot", "presets", "privacy_utility", "runtime", "sources",
              "span", "symbolic", "verify", "victims", "widgets")
__all__ = [*SUBMODULES, "ReconstructionError", "ReconstructionWarning", "device", "pick", "profile",
           "progress_bar", "seed_everything"]


def __getattr__(name: str) -> ModuleType:
    """``rl.<submodule>``, imported on first access (PEP 562)."""
    if name in SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
