"""Chapter 00: the FedSGD message, the batch mean, the architecture read off a message."""
import torch
from torch.nn import functional as F


# --- 00.message: fedsgd_message(model, x, y) -> {name: gradient} -------------------------------
def message_autograd(model, x, y):
    names, parameters = zip(*model.named_parameters(), strict=True)
    loss = F.cross_entropy(model(x), y)
    return dict(zip(names, torch.autograd.grad(loss, parameters), strict=True))


def message_sum_over_b(model, x, y):
    params = dict(model.named_parameters())
    loss = F.cross_entropy(model(x), y, reduction="sum") / len(y)
    grads = torch.autograd.grad(loss, list(params.values()))
    return {name: grad for name, grad in zip(params, grads, strict=True)}


def message_log_softmax(model, x, y):
    logp = torch.log_softmax(model(x), dim=1)
    loss = -logp[torch.arange(len(y)), y].mean()
    names = [name for name, _ in model.named_parameters()]
    grads = torch.autograd.grad(loss, [p for _, p in model.named_parameters()])
    return {n: g for n, g in zip(names, grads, strict=True)}


def message_summed_loss(model, x, y):
    names, parameters = zip(*model.named_parameters(), strict=True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    return dict(zip(names, torch.autograd.grad(loss, parameters), strict=True))


def message_nll_without_log(model, x, y):
    names, parameters = zip(*model.named_parameters(), strict=True)
    loss = F.nll_loss(model(x), y)
    return dict(zip(names, torch.autograd.grad(loss, parameters), strict=True))


def message_softmax_twice(model, x, y):
    names, parameters = zip(*model.named_parameters(), strict=True)
    loss = F.cross_entropy(model(x).softmax(dim=1), y)
    return dict(zip(names, torch.autograd.grad(loss, parameters), strict=True))


def message_mse_one_hot(model, x, y):
    names, parameters = zip(*model.named_parameters(), strict=True)
    logits = model(x)
    loss = F.mse_loss(logits.softmax(1), F.one_hot(y, logits.shape[1]).float())
    return dict(zip(names, torch.autograd.grad(loss, parameters), strict=True))


def message_first_sample(model, x, y):
    names, parameters = zip(*model.named_parameters(), strict=True)
    loss = F.cross_entropy(model(x[:1]), y[:1])
    return dict(zip(names, torch.autograd.grad(loss, parameters), strict=True))


def message_update_not_gradient(model, x, y):
    names, parameters = zip(*model.named_parameters(), strict=True)
    loss = F.cross_entropy(model(x), y)
    return {n: -g for n, g in zip(names, torch.autograd.grad(loss, parameters), strict=True)}


def message_numbered_keys(model, x, y):
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return {str(i): g for i, g in enumerate(grads)}


# --- 00.batch_mean: batch_message(per_sample) -> {name: mean over the B samples} --------------
def mean_dim0(per_sample):
    return {name: grads.mean(dim=0) for name, grads in per_sample.items()}


def mean_by_loop(per_sample):
    out = {}
    for name, grads in per_sample.items():
        total = torch.zeros_like(grads[0])
        for sample in grads:
            total = total + sample
        out[name] = total / grads.shape[0]
    return out


def mean_sum_over_len(per_sample):
    return {k: v.sum(0) / len(v) for k, v in per_sample.items()}


def mean_sum(per_sample):
    return {name: grads.sum(dim=0) for name, grads in per_sample.items()}


def mean_first(per_sample):
    return {name: grads[0] for name, grads in per_sample.items()}


def mean_last_axis(per_sample):
    return {name: grads.mean(dim=-1) for name, grads in per_sample.items()}


def mean_everything(per_sample):
    return {name: grads.mean() for name, grads in per_sample.items()}


def mean_over_b_minus_1(per_sample):
    return {name: grads.sum(0) / (grads.shape[0] - 1) for name, grads in per_sample.items()}


def mean_median(per_sample):
    return {name: grads.median(dim=0).values for name, grads in per_sample.items()}


# --- 00.architecture: read_architecture(message) -> (d, widths, n_classes) ----------------------
def arch_2d_tensors(message):
    weights = [g for g in message.values() if g.ndim == 2]
    return weights[0].shape[1], [w.shape[0] for w in weights[:-1]], weights[-1].shape[0]


def arch_by_name(message):
    weights = [g for name, g in message.items() if name.endswith("weight")]
    d = int(weights[0].shape[1])
    widths = [int(w.shape[1]) for w in weights[1:]]  # each layer's input is the previous width
    return d, widths, int(weights[-1].shape[0])


def arch_numel(message):
    shapes = [tuple(g.shape) for g in message.values() if len(g.shape) == 2]
    d = torch.Size(shapes[0]).numel() // shapes[0][0]
    return d, [out for out, _ in shapes[:-1]], shapes[-1][0]


def arch_assume_biases(message):
    weights = list(message.values())[::2]  # weight, bias, weight, bias, ...
    return weights[0].shape[1], [w.shape[0] for w in weights[:-1]], weights[-1].shape[0]


def arch_widths_from_biases(message):
    weights = [g for g in message.values() if g.ndim == 2]
    biases = [g for g in message.values() if g.ndim == 1]
    return weights[0].shape[1], [b.shape[0] for b in biases[:-1]], weights[-1].shape[0]


def arch_last_layer_in_widths(message):
    weights = [g for g in message.values() if g.ndim == 2]
    return weights[0].shape[1], [w.shape[0] for w in weights], weights[-1].shape[0]


def arch_swapped_axes(message):
    weights = [g for g in message.values() if g.ndim == 2]
    return weights[0].shape[0], [w.shape[1] for w in weights[:-1]], weights[-1].shape[1]


def arch_one_hidden_layer(message):
    weights = [g for g in message.values() if g.ndim == 2]
    return weights[0].shape[1], [weights[0].shape[0]], weights[-1].shape[0]


def arch_classes_from_last_input(message):
    weights = [g for g in message.values() if g.ndim == 2]
    return weights[0].shape[1], [w.shape[0] for w in weights[:-1]], weights[-1].shape[1]


ANSWERS = {
    "00.message": [
        ("autograd.grad on the mean cross-entropy", message_autograd, True),
        ("sum reduction divided by B", message_sum_over_b, True),
        ("log-softmax and the picked log-probabilities", message_log_softmax, True),
        ("summed loss, not averaged", message_summed_loss, False),
        ("nll_loss on logits (no log-softmax)", message_nll_without_log, False),
        ("cross-entropy of the softmax (softmax twice)", message_softmax_twice, False),
        ("MSE to one-hot instead of cross-entropy", message_mse_one_hot, False),
        ("only the first sample", message_first_sample, False),
        ("the update −g instead of the gradient", message_update_not_gradient, False),
        ("keys 0, 1, … instead of parameter names", message_numbered_keys, False),
    ],
    "00.batch_mean": [
        ("mean over dim 0", mean_dim0, True),
        ("loop and divide by B", mean_by_loop, True),
        ("sum over dim 0 divided by len", mean_sum_over_len, True),
        ("sum, not mean", mean_sum, False),
        ("first sample only", mean_first, False),
        ("mean over the last axis", mean_last_axis, False),
        ("mean of every entry (a scalar)", mean_everything, False),
        ("divide by B − 1", mean_over_b_minus_1, False),
        ("median over samples", mean_median, False),
    ],
    "00.architecture": [
        ("2-D gradients, out sizes", arch_2d_tensors, True),
        ("names ending in weight, widths from in sizes", arch_by_name, True),
        ("shapes and numel", arch_numel, True),
        ("every other tensor (assumes biases)", arch_assume_biases, False),
        ("widths from bias sizes", arch_widths_from_biases, False),
        ("the head's size among the widths", arch_last_layer_in_widths, False),
        ("out and in axes swapped", arch_swapped_axes, False),
        ("assumes one hidden layer", arch_one_hidden_layer, False),
        ("classes from the head's input size", arch_classes_from_last_input, False),
    ],
}
