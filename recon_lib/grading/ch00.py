"""Checks of exercise set 00, the threat model (``exercises/00_threat_model.ipynb``).

Cases are fresh random MLPs (depth, widths, activation, bias, classes) and batches of real face
images with random labels; answers are compared with :func:`recon_lib.fl.client_update` (the
reference FedSGD client) and with the model's own structure.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from .. import fl
from . import ask, cases, constant_factor, expected, fail, task


def make_case(index: int, batch: tuple[int, int] = (2, 5), bias: bool = True,
              show_shape: bool = True) -> tuple[nn.Sequential, Tensor, Tensor, str]:
    """A fresh random MLP, a batch of faces with random labels, and a description of the case."""
    x = cases.face_batch(cases.randint(*batch))
    activation = cases.ACTIVATIONS[index % len(cases.ACTIVATIONS)]
    model = cases.random_mlp(x.shape[1:], activation, bias=bias, extra_layers=(0, 2))
    y = torch.randint(cases.n_classes(model), (len(x),))
    # the architecture task must not print its own answer
    what = cases.describe(model) if show_shape else f"MLP, {activation}{'' if bias else ', no bias'}"
    return model, x, y, f"case {index + 1} ({what}, batch of B={len(x)} faces)"


def _expect_message(got: object, want: Mapping[str, Tensor], case: str) -> dict[str, Tensor]:
    """A dict with exactly the reference's keys and shapes, else a specific complaint."""
    if got is None:
        fail("your function returned None. Did you forget the `return` statement?", case)
    if not isinstance(got, Mapping):
        fail(f"return a dict {{parameter name: gradient}}, not a {type(got).__name__}.", case)
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or extra:
        fail(f"the keys should be the names of model.named_parameters(); missing {missing}, "
             f"unexpected {extra}.", case)
    for key, value in want.items():
        if not isinstance(got[key], Tensor):
            fail(f"got[{key!r}] is a {type(got[key]).__name__}; every value must be a tensor.", case)
        if got[key].shape != value.shape:
            fail(f"got[{key!r}] has shape {tuple(got[key].shape)}, but a gradient has the shape of its "
                 "parameter.", case)
    return {key: value.detach().cpu() for key, value in got.items()}


def _explain_values(got: Mapping[str, Tensor], want: Mapping[str, Tensor], batch_size: int,
                    case: str, otherwise: str) -> None:
    flat_got = torch.cat([got[key].flatten() for key in want])
    flat_want = torch.cat([value.flatten() for value in want.values()])
    factor = constant_factor(flat_got, flat_want, rtol=1e-3)
    if factor is not None and abs(factor - batch_size) < 1e-3 * batch_size and batch_size > 1:
        fail(f"every gradient is B = {batch_size} times too large: the FedSGD loss is the batch "
             "*average* (sum over the batch, then divide by B).", case)
    if factor is not None and abs(factor + 1) < 1e-3:
        fail("every gradient has the wrong sign: the client sends ∇L, not the update step −∇L.", case)
    for key, value in want.items():
        if not torch.allclose(got[key].double(), value.double(), atol=1e-6, rtol=1e-4):
            fail(f"the gradient for {key!r} differs from the client's. {otherwise}", case)


# --- Task 00.message --------------------------------------------------------------------------
@task("00.message", title="the FedSGD message by hand", n_cases=5,
      hint="one scalar loss for the whole batch, then torch.autograd.grad with respect to every "
           "parameter, in the order of model.named_parameters().")
def message(answer: Callable, n_cases: int) -> None:
    """``answer(model, x, y) -> {name: gradient}``, as :func:`recon_lib.fl.client_update`."""
    for index in range(n_cases):
        model, x, y, case = make_case(index, bias=index != 3)
        weights = {key: value.detach().clone() for key, value in model.state_dict().items()}
        want = fl.client_update(model, x, y)
        first = _expect_message(ask(answer, model, x, y, case=case), want, case)
        first = {key: value.clone() for key, value in first.items()}  # later calls may edit .grad
        if any(not torch.equal(value, model.state_dict()[key]) for key, value in weights.items()):
            fail("your function changed the model's weights: the client sends the gradient, it "
                 "does not take a training step.", case)
        _explain_values(first, want, len(x), case, "Is the loss cross-entropy on the model's outputs, "
                        "averaged over the batch?")
        second = _expect_message(ask(answer, model, x, y, case=case), want, case)
        if not all(torch.allclose(second[key], first[key]) for key in want):
            fail("a second call on the same model gave another message: .grad accumulates over "
                 "backward() calls. Use torch.autograd.grad, or zero the gradients first.", case)


# --- Task 00.batch_mean -----------------------------------------------------------------------
@task("00.batch_mean", title="the batch message from one-sample messages", n_cases=5,
      hint="the loss of a batch is the mean of its samples' losses, and a gradient is linear.")
def batch_mean(answer: Callable, n_cases: int) -> None:
    """``answer(per_sample) -> batch message``, per_sample from :func:`recon_lib.fl.client_updates`."""
    for index in range(n_cases):
        model, x, y, case = make_case(index, batch=(2, 6))
        per_sample = fl.client_updates(model, x, y)
        want = fl.client_update(model, x, y)
        got = ask(answer, per_sample, case=case)
        if isinstance(got, Mapping) and set(got) == set(want) and all(
                isinstance(got[k], Tensor) and got[k].shape == per_sample[k].shape for k in want):
            fail("your gradients still have the leading client dimension of size B: reduce over it.",
                 case)
        got = _expect_message(got, want, case)
        _explain_values(got, want, len(x), case, "It should be the mean of the B one-sample gradients "
                        "over the client dimension (dim 0).")


# --- Task 00.architecture ---------------------------------------------------------------------
@task("00.architecture", title="read the architecture from a message", n_cases=6,
      hint="an nn.Linear weight is (out_features, in_features); bias gradients are 1-D; the last "
           "layer is the head.")
def architecture(answer: Callable, n_cases: int) -> None:
    """``answer(message) -> (d, widths, n_classes)`` of the MLP that produced the message."""
    for index in range(n_cases):
        model, x, y, case = make_case(index, batch=(1, 3), bias=index % 3 != 2,
                                         show_shape=False)
        linears = [module for module in model if isinstance(module, nn.Linear)]
        want = (linears[0].in_features, [m.out_features for m in linears[:-1]], linears[-1].out_features)
        expected(*want)
        sent = fl.client_update(model, x, y)
        got = ask(answer, sent, case=case)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            fail("return a tuple (d, widths, n_classes): the input size, the list of hidden widths "
                 "and the number of classes.", case)
        d, widths, n_classes = got
        widths = list(widths) if isinstance(widths, (tuple, list)) else widths
        if (d, widths, n_classes) == want:
            continue
        swapped = ([m.out_features for m in linears][0], [m.in_features for m in linears[1:]],
                   linears[-1].in_features)
        if (d, widths, n_classes) == swapped:
            fail("you read the weight shapes the wrong way round: nn.Linear stores (out, in).", case)
        values = list(sent.values())
        every_other = (values[0].shape[1], [v.shape[0] for v in values[0:-2:2]], values[-1].shape[0])
        if linears[0].bias is None and (d, widths, n_classes) == every_other:
            fail("you skipped every second tensor of the message, as if each layer had a bias "
                 "gradient after its weight gradient; this network has no biases.", case)
        with_head = [m.out_features for m in linears]
        if widths == with_head:
            fail("your widths include the head (the last layer): list the hidden layers only.", case)
        if linears[0].bias is not None and widths == [v.shape[0] for v in values[:-2]]:
            fail("your widths have one entry per tensor of the message; the bias gradients are not "
                 "layers of their own.", case)
        if isinstance(widths, list) and len(widths) != len(want[1]):
            fail(f"your widths list is too {'short' if len(widths) < len(want[1]) else 'long'}: it "
                 "should have one entry per hidden layer.", case)
        wrong = [name for name, a, b in zip(("d", "widths", "n_classes"), (d, widths, n_classes), want,
                                            strict=True) if a != b]
        fail(f"{' and '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not right.", case)
