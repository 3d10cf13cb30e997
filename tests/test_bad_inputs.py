"""Every bad input to the public API raises a clear ValueError/TypeError naming the argument.

A table walks the public functions with wrong types and out-of-range values of their int and
float arguments (batch sizes, seeds, tolerances, widths, classes, kernel/stride/padding),
labels out of range or not integers, images of the wrong shape for the model, frozen
parameters, half precision where an operation has no half kernel, and sizes that would take
minutes. Each case must raise ``ValueError`` or ``TypeError`` whose message names the argument:
never an internal torch/NumPy message, an ``AttributeError``/``IndexError``/``OverflowError``,
or a silently returned (NaN) result. Section 4 of issue 13 (the closed form's overflow,
negative tolerances, ``recover_label`` of zeros, the empty batch) is tested with the solvers.
"""
from __future__ import annotations

import math
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

import recon_lib as rl

NAN, INF = math.nan, math.inf


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[], object]
    arg: str                      # the argument the message must name


def mlp():
    torch.manual_seed(0)
    return rl.models.mlp((1, 4, 4), [6], 3)


def cnn():
    torch.manual_seed(0)
    return rl.models.cnn((1, 6, 6), [3], 3)


X, Y = torch.rand(2, 1, 4, 4), torch.tensor([0, 2])
MESSAGE = rl.fl.client_update(mlp(), X, Y)
ONE = rl.fl.client_update(mlp(), X[:1], Y[:1])
CNN_MESSAGE = rl.fl.client_update(cnn(), torch.rand(1, 1, 6, 6), torch.tensor([1]))
LAYER = nn.Conv2d(1, 2, 3, padding=1)
IMAGE = torch.rand(1, 8, 8)


def frozen_mlp():
    model = mlp()
    model[1].weight.requires_grad_(False)
    return model


def all_frozen():
    model = mlp()
    model.requires_grad_(False)
    return model


def ints(prefix: str, call: Callable[[object], object], arg: str, low: int = 1,
         extra: tuple = (), none_ok: bool = False) -> list[Case]:
    """An int argument: below its range, a float, a bool, a string, None, NaN, and ``extra``."""
    bad = (low - 1, 2.5, True, "3") + (() if none_ok else (None,)) + (NAN,) + extra
    return [Case(f"{prefix} {arg}={value!r}", (lambda v=value: call(v)), arg) for value in bad]


def reals(prefix: str, call: Callable[[object], object], arg: str, bad: tuple,
          none_ok: bool = False) -> list[Case]:
    """A float argument: the values ``bad``, a string, None (unless allowed), NaN and inf."""
    return [Case(f"{prefix} {arg}={value!r}", (lambda v=value: call(v)), arg)
            for value in bad + ("0.5",) + (() if none_ok else (None,)) + (NAN, INF)]


CASES: list[Case] = [
    # --- models: widths, classes, shapes, kernel / stride / padding ----------------------------
    *ints("mlp", lambda v: rl.models.mlp((1, 4, 4), [v], 3), "widths"),
    *ints("mlp", lambda v: rl.models.mlp((1, 4, 4), [6], v), "n_classes"),
    Case("mlp widths=6 (not a list)", lambda: rl.models.mlp((1, 4, 4), 6, 3), "widths"),
    Case("mlp in_shape=(1, 0, 4)", lambda: rl.models.mlp((1, 0, 4), [6], 3), "in_shape"),
    Case("mlp in_shape=(1, 4.5, 4)", lambda: rl.models.mlp((1, 4.5, 4), [6], 3), "in_shape"),
    Case("mlp in_shape=16", lambda: rl.models.mlp(16, [6], 3), "in_shape"),
    Case("mlp activation=3", lambda: rl.models.mlp((1, 4, 4), [6], 3, activation=3), "activation"),
    *ints("cnn", lambda v: rl.models.cnn((1, 6, 6), [v], 3), "kernels"),
    *ints("cnn", lambda v: rl.models.cnn((1, 6, 6), [2], v), "n_classes"),
    *ints("cnn", lambda v: rl.models.cnn((1, 6, 6), [2], 3, kernel_size=v), "kernel_size"),
    *ints("cnn", lambda v: rl.models.cnn((1, 6, 6), [2], 3, stride=v), "stride"),
    *ints("cnn", lambda v: rl.models.cnn((1, 6, 6), [2], 3, padding=v), "padding", low=0),
    Case("cnn kernel_size=9 > the padded 6x6 input", lambda: rl.models.cnn((1, 6, 6), [2], 3, kernel_size=9,
                                                                         padding=0), "kernel_size"),
    Case("cnn in_shape=(6, 6)", lambda: rl.models.cnn((6, 6), [2], 3), "in_shape"),
    *ints("lenet_dlg", lambda v: rl.models.lenet_dlg((3, 32, 32), v), "n_classes"),
    Case("lenet_dlg in_shape=(32, 32)", lambda: rl.models.lenet_dlg((32, 32)), "in_shape"),

    # --- the client: labels, image shapes, dtypes, frozen parameters ----------------------------
    Case("client_update label 3 of 3 classes",
         lambda: rl.fl.client_update(mlp(), X, torch.tensor([0, 3])), "y"),
    Case("client_update label -1", lambda: rl.fl.client_update(mlp(), X, torch.tensor([0, -1])), "y"),
    Case("client_update float labels", lambda: rl.fl.client_update(mlp(), X, torch.tensor([0.0, 1.0])), "y"),
    Case("client_update labels (B, 1)", lambda: rl.fl.client_update(mlp(), X, Y[:, None]), "y"),
    Case("client_update bool labels", lambda: rl.fl.client_update(mlp(), X, Y > 0), "y"),
    Case("client_update x 5x5 for a 4x4 model",
         lambda: rl.fl.client_update(mlp(), torch.rand(2, 1, 5, 5), Y), "x"),
    Case("client_update x without batch dim", lambda: rl.fl.client_update(mlp(), X[0], Y[:1]), "x"),
    Case("client_update x NaN", lambda: rl.fl.client_update(mlp(), X * NAN, Y), "x"),
    Case("client_update empty batch", lambda: rl.fl.client_update(mlp(), X[:0], Y[:0]), "x"),
    Case("client_update all parameters frozen", lambda: rl.fl.client_update(all_frozen(), X, Y), "model"),
    Case("client_updates label 3 of 3", lambda: rl.fl.client_updates(mlp(), X, torch.tensor([0, 3])), "y"),
    Case("client_updates x 5x5", lambda: rl.fl.client_updates(mlp(), torch.rand(2, 1, 5, 5), Y), "x"),
    Case("client_updates all frozen", lambda: rl.fl.client_updates(all_frozen(), X, Y), "model"),
    Case("client_update x list", lambda: rl.fl.client_update(mlp(), X.tolist(), Y), "x"),

    # --- the closed form and its label recovery -------------------------------------------------
    Case("reconstruct with a frozen first layer", lambda: rl.analytic.reconstruct(
        frozen_mlp(), rl.fl.client_update(frozen_mlp(), X[:1], Y[:1])), "grads"),
    Case("reconstruct in_shape=(1, 5, 5)", lambda: rl.analytic.reconstruct(mlp(), ONE, in_shape=(1, 5, 5)),
         "in_shape"),
    Case("reconstruct grads=list", lambda: rl.analytic.reconstruct(mlp(), list(ONE.values())), "grads"),
    Case("reconstruct grads NaN",
         lambda: rl.analytic.reconstruct(mlp(), {k: v * NAN for k, v in ONE.items()}),
         "grads"),
    Case("reconstruct model=None", lambda: rl.analytic.reconstruct(None, ONE), "model"),
    Case("reconstruct grads of another model", lambda: rl.analytic.reconstruct(
        rl.models.mlp((1, 4, 4), [7], 3), ONE), "grads"),
    *ints("recover_labels", lambda v: rl.analytic.recover_labels(mlp(), MESSAGE, v), "batch_size",
          extra=(4, 10**30)),
    *ints("recover_label_counts",
          lambda v: rl.analytic.recover_label_counts(mlp(), MESSAGE, v), "batch_size"),
    *ints("batch_span", lambda v: rl.analytic.batch_span(MESSAGE["1.weight"], MESSAGE["1.bias"], v),
          "batch_size"),
    *reals("batch_span", lambda v: rl.analytic.batch_span(MESSAGE["1.weight"], MESSAGE["1.bias"], 2, rtol=v),
           "rtol", (-1.0,), none_ok=True),
    Case("batch_span shapes disagree",
         lambda: rl.analytic.batch_span(MESSAGE["1.weight"], MESSAGE["3.bias"], 2),
         "grad_bias"),
    *ints("fix_scale", lambda v: rl.analytic.fix_scale(torch.rand(16), pixel=v), "pixel", low=0,
          extra=(16, -17)),
    *reals("fix_scale", lambda v: rl.analytic.fix_scale(torch.rand(16), norm=v), "norm", (-1.0, 0.0),
           none_ok=True),
    *reals("fix_scale", lambda v: rl.analytic.fix_scale(torch.rand(16), pixel=0, value=v), "value", (),
           none_ok=True),
    *reals("usable_units", lambda v: rl.analytic.usable_units(MESSAGE["1.bias"], tol="x" if v is None else v),
           "tol", ()),
    Case("invert_linear grad_bias of another length", lambda: rl.analytic.invert_linear(
        MESSAGE["1.weight"], MESSAGE["3.bias"]), "grad_bias"),

    # --- CNN inversion ---------------------------------------------------------------------------
    *reals("invert_cnn", lambda v: rl.analytic.invert_cnn(cnn(), CNN_MESSAGE, tol=v), "tol", ()),
    *ints("invert_cnn", lambda v: rl.analytic.invert_cnn(cnn(), CNN_MESSAGE, max_iter=v), "max_iter"),
    Case("invert_cnn in_shape=(1, 7, 7)",
         lambda: rl.analytic.invert_cnn(cnn(), CNN_MESSAGE, in_shape=(1, 7, 7)),
         "in_shape"),
    Case("invert_cnn half precision", lambda: rl.analytic.invert_cnn(
        cnn().half(), {k: v.half() for k, v in CNN_MESSAGE.items()}), "dtype"),
    *reals("cgls", lambda v: rl.conv.cgls(lambda z: z, lambda z: z, torch.ones(1, 3), tol=v), "tol", (-1.0,)),
    *ints("cgls", lambda v: rl.conv.cgls(lambda z: z, lambda z: z, torch.ones(1, 3), max_iter=v), "max_iter"),
    Case("conv.solve y of the wrong shape",
         lambda: rl.conv.solve(LAYER, torch.rand(1, 3, 8, 8), (1, 8, 8)), "y"),
    Case("conv.solve in_shape=(2, 8, 8)", lambda: rl.conv.solve(LAYER, torch.rand(1, 2, 8, 8), (2, 8, 8)),
         "in_shape"),
    Case("out_shape in_shape=(1, 0, 8)", lambda: rl.conv.out_shape(LAYER, (1, 0, 8)), "in_shape"),
    Case("as_matrix of a 3x512x512 input (minutes)", lambda: rl.conv.as_matrix(
        nn.Conv2d(3, 8, 3, padding=1), (3, 512, 512)), "in_shape"),
    Case("condition_number dense on 3x256x256", lambda: rl.conv.condition_number(
        nn.Conv2d(3, 8, 3, padding=1), (3, 256, 256), dense=True), "in_shape"),
    Case("fourier_singular_values size=(0, 8)",
         lambda: rl.conv.fourier_singular_values(LAYER, (0, 8)), "size"),
    Case("condition_number half precision", lambda: rl.conv.condition_number(
        nn.Conv2d(1, 2, 3, padding=1).half(), (1, 8, 8), dense=True), "dtype"),

    # --- conditions: geometry and ranks ---------------------------------------------------------
    *ints("conv_output_width", lambda v: rl.conditions.conv_output_width(v, 3), "d"),
    *ints("conv_output_width", lambda v: rl.conditions.conv_output_width(8, v), "k"),
    Case("conv_output_width k=11 > d", lambda: rl.conditions.conv_output_width(8, 11), "kernel"),
    *ints("conv_output_width", lambda v: rl.conditions.conv_output_width(8, 3, v), "s"),
    *ints("conv_output_width", lambda v: rl.conditions.conv_output_width(8, 3, 1, v), "p", low=0),
    *ints("conv_output_width", lambda v: rl.conditions.conv_output_width(8, 3, 1, 0, v), "dilation"),
    *ints("min_kernels", lambda v: rl.conditions.min_kernels(8, v, 3), "C"),
    *ints("min_kernels", lambda v: rl.conditions.min_kernels(v, 1, 3), "d"),
    *ints("covered_width", lambda v: rl.conditions.covered_width(8, 3, v), "s"),
    *ints("effective_output_width", lambda v: rl.conditions.effective_output_width(8, v), "k"),
    *ints("bound_gap", lambda v: rl.conditions.bound_gap(8, 3, p=v), "p", low=0),
    *ints("conv_rank", lambda v: rl.conditions.conv_rank(v, 6, 2, 3), "C"),
    *ints("conv_rank", lambda v: rl.conditions.conv_rank(1, 6, v, 3), "h"),
    *ints("conv_rank", lambda v: rl.conditions.conv_rank(1, 6, 2, 3, seed=v), "seed", low=0),
    Case("conv_rank of a 3x96x96 input (minutes)", lambda: rl.conditions.conv_rank(3, 96, 8, 3, p=1), "d"),
    Case("conv_rank of 3x300x300 (terabytes)", lambda: rl.conditions.conv_rank(3, 300, 8, 3, p=1), "d"),
    *ints("bound_row", lambda v: rl.conditions.bound_row(1, 6, 2, 3, seed=v), "seed", low=0),
    *ints("generic_rank", lambda v: rl.conditions.generic_rank(v, 2, 16), "h"),
    *ints("generic_rank", lambda v: rl.conditions.generic_rank(4, v, 16), "batch_size"),
    *ints("batch_recoverable", lambda v: rl.conditions.batch_recoverable(4, v), "batch_size"),
    *ints("batch_recoverable", lambda v: rl.conditions.batch_recoverable(v, 2), "h"),
    *ints("conv1d_symbolic", lambda v: rl.conditions.conv1d_symbolic(v, 3), "d"),

    # --- optimisation attacks --------------------------------------------------------------------
    *ints("gradient_matching", lambda v: rl.optimize.gradient_matching(mlp(), MESSAGE, v, steps=1,
                                                                       progress=False), "batch_size"),
    *ints("gradient_matching", lambda v: rl.optimize.gradient_matching(mlp(), MESSAGE, 2, seed=v, steps=1,
                                                                       progress=False), "seed", low=0),
    *ints("gradient_matching", lambda v: rl.optimize.gradient_matching(mlp(), MESSAGE, 2, steps=v,
                                                                       progress=False), "steps"),
    *reals("gradient_matching", lambda v: rl.optimize.gradient_matching(mlp(), MESSAGE, 2, lr=v, steps=1,
                                                                        progress=False), "lr", (0.0, -1.0)),
    *reals("gradient_matching", lambda v: rl.optimize.gradient_matching(mlp(), MESSAGE, 2, tol=v, steps=1,
                                                                        progress=False), "tol", (-1.0,)),
    Case("gradient_matching labels out of range", lambda: rl.optimize.gradient_matching(
        mlp(), MESSAGE, 2, torch.tensor([0, 3]), steps=1, progress=False), "labels"),
    Case("gradient_matching float labels", lambda: rl.optimize.gradient_matching(
        mlp(), MESSAGE, 2, torch.tensor([0.0, 2.0]), steps=1, progress=False), "labels"),
    Case("gradient_matching 3 labels for B=2", lambda: rl.optimize.gradient_matching(
        mlp(), MESSAGE, 2, torch.tensor([0, 1, 2]), steps=1, progress=False), "labels"),
    Case("gradient_matching preset='nope'", lambda: rl.optimize.gradient_matching(
        mlp(), MESSAGE, 2, preset="nope", progress=False), "preset"),
    Case("gradient_matching unknown option", lambda: rl.optimize.gradient_matching(
        mlp(), MESSAGE, 2, stepz=3, progress=False), "stepz"),
    Case("gradient_matching device='tpu'", lambda: rl.optimize.gradient_matching(
        mlp(), MESSAGE, 2, device="tpu", steps=1, progress=False), "device"),
    Case("gradient_matching in_shape=(1, 5, 5)", lambda: rl.optimize.gradient_matching(
        mlp(), MESSAGE, 2, in_shape=(1, 5, 5), steps=1, progress=False), "in_shape"),
    *ints("options", lambda v: rl.optimize.options(restarts=v), "restarts"),
    *ints("options", lambda v: rl.optimize.options(history=v), "history"),
    *reals("options", lambda v: rl.optimize.options(tv=v), "tv", (-1.0,)),
    Case("options distance='manhattan'", lambda: rl.optimize.options(distance="manhattan"), "distance"),
    Case("options dtype='half'", lambda: rl.optimize.options(dtype="half"), "dtype"),
    *ints("solve_batch", lambda v: rl.newton.solve_batch(mlp(), MESSAGE, v), "batch_size"),
    *ints("solve_batch", lambda v: rl.newton.solve_batch(mlp(), MESSAGE, 2, max_evaluations=v),
          "max_evaluations"),
    *ints("solve_batch", lambda v: rl.newton.solve_batch(mlp(), MESSAGE, 2, seed=v), "seed", low=0),
    Case("solve_batch dtype=float16", lambda: rl.newton.solve_batch(mlp(), MESSAGE, 2, dtype=torch.float16),
         "dtype"),
    Case("solve_batch labels out of range",
         lambda: rl.newton.solve_batch(mlp(), MESSAGE, 2, torch.tensor([0, 5])),
         "labels"),

    # --- defences and their budgets -------------------------------------------------------------
    *reals("add_noise", lambda v: rl.defences.add_noise(MESSAGE, v), "std", (-1.0,)),
    *reals("prune", lambda v: rl.defences.prune(MESSAGE, v), "ratio", (-0.1, 1.5)),
    *ints("quantize", lambda v: rl.defences.quantize(MESSAGE, v), "bits", extra=(10**6,)),
    *reals("dp_update", lambda v: rl.defences.dp_update(mlp(), X, Y, clip=v, noise_multiplier=1.0), "clip",
           (0.0, -1.0)),
    *reals("dp_update", lambda v: rl.defences.dp_update(mlp(), X, Y, clip=1.0, noise_multiplier=v),
           "noise_multiplier", (-1.0,)),
    Case("dp_update label out of range",
         lambda: rl.defences.dp_update(mlp(), X, torch.tensor([0, 7]), clip=1.0,
                                                                      noise_multiplier=1.0), "y"),
    *reals("epsilon", lambda v: rl.defences.epsilon(1.0, v, 10), "sample_rate", (0.0, 1.5)),
    *ints("epsilon", lambda v: rl.defences.epsilon(1.0, 0.01, v), "steps"),
    *reals("epsilon", lambda v: rl.defences.epsilon(1.0, 0.01, 10, delta=v), "delta", (0.0, 1.0)),
    *ints("fedavg_update", lambda v: rl.defences.fedavg_update(mlp(), X, Y, local_steps=v, lr=0.1),
          "local_steps"),
    *reals("fedavg_update",
           lambda v: rl.defences.fedavg_update(mlp(), X, Y, local_steps=1, lr=v), "lr", (0.0,)),
    Case("defences.get('nope')", lambda: rl.defences.get("nope"), "defence"),
    *reals("server_view", lambda v: rl.defences.server_view("dp", mlp(), X, Y, v), "strength", (-1.0,)),
    *ints("noise_generator", lambda v: rl.defences.noise_generator(mlp(), v), "seed", low=0, extra=(2**70,)),
    *reals("dp_psnr_bound", lambda v: rl.defences.dp_psnr_bound(v, X), "noise_multiplier", (0.0, -1.0)),
    *ints("privacy_budget",
          lambda v: rl.privacy_utility.privacy_budget("dp", 1.0, shard=v, rounds=5), "shard"),
    *ints("privacy_budget",
          lambda v: rl.privacy_utility.privacy_budget("dp", 1.0, shard=20, rounds=v), "rounds"),
    *ints("train_federated",
          lambda v: rl.privacy_utility.train_federated(mlp(), X, Y, name=None, strength=0.0,
                                                                         n_clients=v), "n_clients"),
    *ints("train_federated",
          lambda v: rl.privacy_utility.train_federated(mlp(), X, Y, name=None, strength=0.0,
                                                                         batch_size=v), "batch_size"),

    # --- distortions, symbolic, benchmark, runtime, plot -----------------------------------------
    *reals("distort", lambda v: rl.distortions.distort(IMAGE, "noise", v), "strength", (-1.0,)),
    *ints("distort", lambda v: rl.distortions.distort(IMAGE, "noise", 0.1, seed=v), "seed", low=0),
    Case("distort how='rain'", lambda: rl.distortions.distort(IMAGE, "rain", 0.1), "how"),
    *reals("at_psnr", lambda v: rl.distortions.at_psnr(IMAGE, "noise", v), "target_db", (-5.0,)),
    Case("distort x outside [0, 1]", lambda: rl.distortions.distort(IMAGE * 255, "noise", 0.1), "x"),
    *ints("symbolic.chain", lambda v: rl.symbolic.chain(v), "depth"),
    *ints("symbolic.one_node", lambda v: rl.symbolic.one_node(v), "d"),
    *ints("benchmark.sample", lambda v: rl.benchmark.sample("mnist", v), "n"),
    Case("benchmark.sample kind='cifar10'", lambda: rl.benchmark.sample("cifar10", 1), "dataset"),
    Case("benchmark.settings('slow')", lambda: rl.benchmark.settings("slow"), "profile"),
    Case("benchmark.methods(['nope'])", lambda: rl.benchmark.methods(["nope"]), "nope"),
    Case("benchmark.kernel_bound in_shape=(0, 4, 4)",
         lambda: rl.benchmark.kernel_bound((0, 4, 4)), "in_shape"),
    Case("benchmark.run n=0",
         lambda: rl.benchmark.run(rl.benchmark.methods(["closed_form"]), ["mnist"], 0, [0],
                                                     progress=False), "n"),
    Case("benchmark.run kinds=['cifar10']", lambda: rl.benchmark.run(
        rl.benchmark.methods(["closed_form"]), ["cifar10"], 1, [0], progress=False), "dataset"),
    *ints("seed_everything", lambda v: rl.seed_everything(v), "seed", low=0, extra=(2**70,)),
    *ints("plot.grid", lambda v: rl.plot.grid([IMAGE], ncols=v), "ncols"),
    Case("plot.grid no images", lambda: rl.plot.grid([]), "images"),
    Case("plot.compare shapes differ", lambda: rl.plot.compare(IMAGE, torch.rand(1, 4, 4)), "reconstruction"),

    # --- data and metrics (the deeper cases live in test_data_errors.py and test_metrics.py) ----
    *ints("datasets.load", lambda v: rl.datasets.load("mnist", n=v), "n", none_ok=True),
    Case("datasets.load root=''", lambda: rl.datasets.load("mnist", source="full", root=""), "root"),
    Case("sources.fetch key='nope'", lambda: rl.sources.fetch("mnist", "nope"), "key"),
    Case("metrics.psnr x in [0, 255]", lambda: rl.metrics.psnr(X, X * 255), "x"),
    Case("metrics.psnr NaN", lambda: rl.metrics.psnr(X * NAN, X), "x_hat"),
    Case("metrics.ssim complex",
         lambda: rl.metrics.ssim(X.to(torch.complex64), X.to(torch.complex64)), "x_hat"),
    Case("metrics.match empty", lambda: rl.metrics.match(X[:0], X[:0]), "x_hat"),
]


def verdict(case: Case) -> str | None:
    """``None`` when ``case`` raises a clear error; else what is wrong with what happened."""
    try:
        result = case.call()
    except (ValueError, TypeError) as err:
        frames = traceback.extract_tb(err.__traceback__)
        if not frames or "recon_lib" not in Path(frames[-1].filename).parts:
            return f"raised by {Path(frames[-1].filename).name if frames else '?'}: {err}"
        if not re.search(rf"(?<![\w.]){re.escape(case.arg)}(?![\w(])", str(err)):
            return f"does not name {case.arg!r}: {err}"
        return None
    except Exception as err:                        # AttributeError, IndexError, RuntimeError, ...
        return f"{type(err).__name__}: {err}"
    return f"returned {type(result).__name__} instead of raising"


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_bad_input_raises_a_clear_error_naming_the_argument(case):
    problem = verdict(case)
    assert problem is None, problem[:300]
    plt.close("all")


def test_the_walk_covers_every_class_of_section_5():
    ids = " ".join(c.id for c in CASES)
    for cls in ("batch_size", "seed", "tol", "widths", "n_classes", "kernel_size", "stride", "padding",
                "label", "5x5", "frozen", "half", "minutes"):
        assert cls in ids, cls
    assert len(CASES) >= 250
