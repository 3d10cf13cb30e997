"""recon_lib — the library behind the course on input reconstruction in federated learning.

Built on Qian, Nassar & Hansen (2021), *Minimal Model Structure Analysis for Input
Reconstruction in Federated Learning* (arXiv 2010.15718). The data flow a learner follows:

    model + private data → ``fl.client_update`` (the message) → an attack in ``analytic``,
    ``cnn``, ``newton`` or ``optimize`` (sees only model and message) → ``metrics`` and ``plot``.

Modules, by chapter: ``fl``, ``models`` (00–01); ``analytic``, ``symbolic`` (01); ``labels``,
``span``, ``conditions``, ``newton`` (02); ``geometry``, ``conv``, ``activations``, ``cnn`` (03);
``optimize``, ``presets``, ``lbfgs`` (02, 04); ``datasets``, ``sources`` (all); ``benchmark`` with
``benchmark_methods``, ``benchmark_tables``, ``benchmark_figures``, and ``distortions`` (06);
``defences``, ``defence_theory``, ``privacy_utility`` (07); ``metrics``, ``plot``, ``widgets``,
``grading``, ``runtime`` (all); ``flower``, ``deployment``, ``victims`` (08, imported on first
use: they load Flower); ``imprint`` (09).

Layers: a module imports only modules of lower layers (``tests/test_layers.py`` checks it by
parsing every import; a new module must be added here and there):

  layer 0: _validate, archives, kinds, runtime
  layer 1: activations, defence_theory, fl, geometry, lbfgs, metrics, models, presets, sources, span, symbolic
  layer 2: analytic, conv, datasets, defences, plot
  layer 3: benchmark_tables, cnn, conditions, distortions, flower, imprint, labels
  layer 4: deployment, newton
  layer 5: optimize
  layer 6: benchmark_methods, privacy_utility, victims
  layer 7: benchmark_figures
  layer 8: benchmark
  layer 9: course, grading, widgets

Import it as ``import recon_lib as rl``.
"""
from types import ModuleType

from . import (
               activations,
               analytic,
               benchmark,
               benchmark_figures,
               benchmark_methods,
               benchmark_tables,
               cnn,
               conditions,
               conv,
               datasets,
               defence_theory,
               defences,
               distortions,
               fl,
               geometry,
               grading,
               imprint,
               labels,
               lbfgs,
               metrics,
               models,
               newton,
               optimize,
               plot,
               presets,
               privacy_utility,
               runtime,
               sources,
               span,
               symbolic,
               widgets,
)
from .runtime import device, pick, profile, progress_bar, seed_everything

# Chapter 08's modules import Flower (and through it gRPC and Ray): loaded on first use, so that
# `import recon_lib` stays fast for chapters 00-07.
_LAZY = ("flower", "deployment", "victims")


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = ["activations", "analytic", "benchmark", "benchmark_figures", "benchmark_methods",
           "benchmark_tables", "cnn", "conditions", "conv", "datasets", "defence_theory", "defences",
           "distortions", "fl", "geometry", "grading", "imprint", "labels", "lbfgs", "metrics", "models",
           "newton", "optimize", "plot", "presets", "privacy_utility", "runtime", "sources", "span",
           "symbolic", "widgets", "device", "pick", "profile", "progress_bar", "seed_everything"]
