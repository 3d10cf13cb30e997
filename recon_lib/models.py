"""Minimal victim models of the course (chapters 01–04).

* :func:`mlp` — Flatten then fully connected layers: the setting of Claim 1 and Claim 2.
* :func:`lenet_dlg` — the sigmoid LeNet of DLG (Zhu et al. 2019) and iDLG (Zhao et al. 2020):
  three 5×5 convolutions of 12 channels (padding 2, strides 2, 2, 1), then one linear layer,
  every weight and bias drawn from U(−0.5, 0.5) as in the published code.

Each model records the input shape it was built for as ``model.in_shape`` so that attacks
can return images rather than flat vectors.

Reading a model (what an attack needs to know about the victim): :func:`first_layer`, the
first layer that does arithmetic on the input, walking past reshapes; :func:`last_linear`,
the classification head.
"""
from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
import torch.fx
from torch import nn

from . import _validate as check

# Ops that only reshape the input; the first *real* layer is found by walking past them.
PASS_THROUGH_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity)
PASS_THROUGH_METHODS = {"view", "reshape", "flatten", "contiguous"}
PASS_THROUGH_FUNCTIONS = {torch.flatten, torch.reshape}

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def _check_shape(in_shape: Sequence[int], ndim: int | None = None) -> tuple[int, ...]:
    return check.shape("in_shape", in_shape, ndim)


def mlp(in_shape: Sequence[int], widths: Sequence[int], n_classes: int,
        activation: str = "sigmoid", bias: bool = True) -> nn.Sequential:
    """A fully connected network: Flatten, then ``Linear → activation`` per width, then a head.

    Args:
        in_shape: shape of one input, e.g. ``(1, 28, 28)``.
        widths: hidden widths; ``widths[0]`` is h, the number of first-layer units.
        n_classes: outputs of the last linear layer.
        activation: name of the activation after each hidden layer.
        bias: whether every linear layer has a bias (Claim 1 needs the first one to).

    Returns:
        An ``nn.Sequential`` with ``model.in_shape`` set.
    """
    shape = _check_shape(in_shape)
    widths, n_classes = check.counts("widths", widths), check.count("n_classes", n_classes)
    sizes = [prod(shape), *widths]
    layers: list[nn.Module] = [nn.Flatten()]
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out, bias=bias), make_activation(activation)]
    layers.append(nn.Linear(sizes[-1], n_classes, bias=bias))
    model = nn.Sequential(*layers)
    model.in_shape = shape  # type: ignore[assignment]  # torch types module attributes as Tensor | Module
    return model


def lenet_dlg(in_shape: Sequence[int] = (3, 32, 32), n_classes: int = 100) -> nn.Sequential:
    """The DLG/iDLG LeNet: sigmoid convs 5×5×12 (strides 2, 2, 1; padding 2) and one linear layer.

    Weights and biases are drawn from U(−0.5, 0.5), as in the published DLG code; seed torch
    before calling for a reproducible model.
    """
    shape = _check_shape(in_shape, ndim=3)
    n_classes = check.count("n_classes", n_classes)
    channels, height, width = shape
    convs = [nn.Conv2d(channels, 12, 5, stride=2, padding=2),
             nn.Conv2d(12, 12, 5, stride=2, padding=2),
             nn.Conv2d(12, 12, 5, stride=1, padding=2)]
    features = nn.Sequential(*[m for conv in convs for m in (conv, nn.Sigmoid())])
    with torch.no_grad():
        n_features = features(torch.zeros(1, *shape)).numel()
    model = nn.Sequential(*features, nn.Flatten(), nn.Linear(n_features, n_classes))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-0.5, 0.5)
    model.in_shape = shape  # type: ignore[assignment]  # torch types module attributes as Tensor | Module
    return model


def cnn(in_shape: Sequence[int], kernels: Sequence[int], n_classes: int, kernel_size: int = 3,
        stride: int = 1, padding: int = 1, activation: str = "sigmoid") -> nn.Sequential:
    """A plain CNN for chapter 03: ``Conv2d → activation`` per entry of ``kernels``, then
    Flatten and a biased linear head, so that :func:`recon_lib.analytic.invert_cnn` applies.

    Args:
        in_shape: C×H×W of one input.
        kernels: number of kernels h of each conv layer (its output channels).
        n_classes: outputs of the linear head.
        kernel_size, stride, padding: shared by every conv layer (PyTorch's default init).
        activation: name of the activation after each conv (see :data:`ACTIVATIONS`).
    """
    shape = _check_shape(in_shape, ndim=3)
    kernels, n_classes = check.counts("kernels", kernels), check.count("n_classes", n_classes)
    kernel_size, stride = check.count("kernel_size", kernel_size), check.count("stride", stride)
    padding = check.integer("padding", padding, low=0)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip([shape[0], *kernels[:-1]], kernels, strict=True):
        layers += [nn.Conv2d(fan_in, fan_out, kernel_size, stride, padding), make_activation(activation)]
    features = nn.Sequential(*layers)
    try:
        with torch.no_grad():
            n_features = features(torch.zeros(1, *shape)).numel()
    except RuntimeError as err:                 # torch: "Kernel size can't be greater than ..."
        raise ValueError(f"kernel_size={kernel_size} (stride {stride}, padding {padding}) does not fit "
                         f"{len(kernels)} conv layers on in_shape {shape}: {err}") from err
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(n_features, n_classes))
    model.in_shape = shape  # type: ignore[assignment]  # torch types module attributes as Tensor | Module
    return model


# --- Reading a model: its first layer and its head ---------------------------------------
def _reads_shape_only(node: torch.fx.Node) -> bool:
    """``x.shape`` or ``x.size()``: reads the shape, not the data."""
    return ((node.op == "call_function" and node.target is getattr and node.args[1] == "shape")
            or (node.op == "call_method" and node.target in {"size", "dim"}))


def _first_in_sequence(model: nn.Sequential, prefix: str) -> tuple[str, nn.Module]:
    """First non-reshaping module of a (possibly nested) ``nn.Sequential``."""
    for name, module in model.named_children():
        if isinstance(module, PASS_THROUGH_MODULES):
            continue
        if isinstance(module, nn.Sequential):
            return _first_in_sequence(module, prefix=f"{prefix}{name}.")
        return f"{prefix}{name}", module
    raise TypeError("the nn.Sequential has no layer that acts on the input")


def first_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """The first layer that does arithmetic on the input, walking past reshapes (Flatten, view).

    Returns:
        ``(qualified name, module)`` as in ``model.named_modules()``.

    Raises:
        TypeError: when the model cannot be traced, the input feeds several ops, or the first
            op is not a module (e.g. ``x * 2``).
    """
    if isinstance(model, nn.Sequential):  # the common case: no tracing needed, microseconds
        return _first_in_sequence(model, prefix="")
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as error:  # noqa: BLE001 - fx raises many kinds; all mean "cannot trace"
        raise TypeError(f"cannot follow the input through {type(model).__name__} "
                        f"({error.__class__.__name__}); use an nn.Sequential or rl.models") from error
    node = next(n for n in graph.nodes if n.op == "placeholder")
    while True:
        users = [user for user in node.users if not _reads_shape_only(user)]
        if len(users) != 1:
            raise TypeError(f"the input feeds {len(users)} ops; the closed form needs one first layer")
        node = users[0]
        if node.op == "call_module":
            module = model.get_submodule(node.target)
            if isinstance(module, PASS_THROUGH_MODULES):
                continue
            return node.target, module
        if node.op == "call_method" and node.target in PASS_THROUGH_METHODS:
            continue
        if node.op == "call_function" and node.target in PASS_THROUGH_FUNCTIONS:
            continue
        raise TypeError(f"the input first goes through {node.format_node()}, which is not a layer "
                        "the closed form knows")


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The last ``nn.Linear`` in module order: the classification head."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError(f"{type(model).__name__} has no nn.Linear head to read a label from")
    return linears[-1]
