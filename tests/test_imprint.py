"""rl.imprint (chapter 09): the planted layer, the closed form on differences of rows, its
verification, secure aggregation and trap weights — on several architectures, sizes and seeds."""
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import recon_lib as rl
from recon_lib import imprint


def _models(shape, seed):
    torch.manual_seed(seed)
    return {"mlp_relu": rl.models.mlp(shape, [16, 8], 10, activation="relu"),
            "mlp_tanh": rl.models.mlp(shape, [5], 7, activation="tanh"),
            "cnn": rl.models.cnn(shape, [4], 6) if len(shape) == 3 else rl.models.mlp(shape, [3], 4)}


def _truth(planted, x):
    """Bin of each image and which images are alone in their bin (from the private data)."""
    bins = planted[0].bin_of(x)
    counts = torch.bincount(bins, minlength=len(planted[0].thresholds))
    return bins, counts[bins] == 1


def _scored(found, planted, x):
    """PSNR of each returned image against the one private image in its bin."""
    bins, _ = _truth(planted, x)
    return torch.stack([rl.metrics.psnr(img.float(), x[(bins == b).nonzero()[0, 0]])
                        for img, b in zip(found.images, found.bins, strict=True)])


@pytest.mark.parametrize("data, side", [("mnist", 16), ("faces", 25), ("imagenet", 24)])
@pytest.mark.parametrize("arch", ["mlp_relu", "mlp_tanh", "cnn"])
def test_every_lone_image_comes_back_exactly_and_nothing_else(data, side, arch):
    pool, labels = rl.datasets.load(data, size=side)
    x, y, public = pool[:12], labels[:12] % 4, (pool[40:] if len(pool) > 40 else None)
    model = _models(tuple(x.shape[1:]), side)[arch]
    planted = imprint.attach(model, x.shape[1:], 24, seed=side, public=public)
    found = imprint.recover(planted, rl.fl.client_update(planted, x, y))
    bins, alone = _truth(planted, x)
    assert sorted(found.bins.tolist()) == sorted(bins[alone].tolist())
    assert (_scored(found, planted, x) > 60).all()
    assert found.scale == 12 and found.labels.tolist() == [y[bins == b].item() for b in found.bins]


def test_batch_size_given_or_inferred_agree_and_a_wrong_one_verifies_nothing():
    x, y = imprint.sample_batch("cifar100", 32, seed=3)
    planted = imprint.attach(_models((3, 32, 32), 1)["mlp_relu"], (3, 32, 32), 64, statistic="random", seed=5)
    grads = rl.fl.client_update(planted, x, y % 10)
    inferred, given = imprint.recover(planted, grads), imprint.recover(planted, grads, batch_size=32)
    assert torch.equal(inferred.bins, given.bins) and len(given.bins) > 8
    assert len(imprint.recover(planted, grads, batch_size=31).bins) == 0


def test_collisions_are_flagged_and_never_returned_as_images():
    x, y = imprint.sample_batch("cifar100", 48, seed=0)
    planted = imprint.attach(_models((3, 32, 32), 2)["mlp_relu"], (3, 32, 32), 8)
    found = imprint.recover(planted, rl.fl.client_update(planted, x, y % 10))
    bins, alone = _truth(planted, x)
    crowded = set(bins[~alone].tolist())
    assert crowded and len(found.collisions) + found.empty + len(found.bins) == 8
    assert len(set(found.collisions.tolist()) & crowded) >= len(crowded) - found.empty
    assert not set(found.bins.tolist()) & crowded
    with pytest.warns(UserWarning, match="collisions"):
        imprint.reconstruct(planted, rl.fl.client_update(planted, x, y % 10))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_no_mixture_passes_the_verification_on_unseen_models(activation):
    """Over seeds, widths and bin counts, crowded bins are never returned as images."""
    wrong = crowded = 0
    for seed in (101, 102, 103):
        torch.manual_seed(seed)
        model = rl.models.mlp((3, 32, 32), [12], 20, activation=activation)
        x, y = imprint.sample_batch("cifar100", 48, seed=seed)
        for bins in (8, 32):
            planted = imprint.attach(model, (3, 32, 32), bins, seed=seed)
            found = imprint.recover(planted, rl.fl.client_update(planted, x, y % 20))
            counts = torch.bincount(planted[0].bin_of(x), minlength=bins)
            wrong += int((counts[found.bins] > 1).sum())
            crowded += int((counts > 1).sum())
    assert wrong == 0 and crowded > 20


def test_reconstruct_returns_the_images_and_on_request_the_collision_bins():
    x, y = rl.datasets.load("cifar100", n=16)
    planted = imprint.attach(_models((3, 32, 32), 3)["cnn"], (3, 32, 32), 128)
    grads = rl.fl.client_update(planted, x, y % 6)
    images, collisions = imprint.reconstruct(planted, grads, return_bins=True)
    found = imprint.recover(planted, grads)
    assert images.shape[1:] == (3, 32, 32) and torch.equal(images, found.images)
    assert torch.equal(collisions, found.collisions)


@pytest.mark.parametrize("clients", [2, 5])
@pytest.mark.parametrize("mean", [True, False])
def test_secure_aggregate_gives_images_of_every_client(clients, mean):
    x, y = imprint.sample_batch("cifar100", clients * 4, seed=clients)
    planted = imprint.attach(_models((3, 32, 32), 4)["mlp_tanh"], (3, 32, 32), 256, seed=1)
    messages = rl.defences.client_messages(planted, x.view(clients, 4, 3, 32, 32), (y % 7).view(clients, 4))
    grads = (rl.defences.secure_aggregate(messages) if mean
             else {k: g.sum(0) for k, g in messages.items()})
    found = imprint.recover(planted, grads)
    bins, alone = _truth(planted, x)
    assert found.scale == (clients * 4 if mean else 4)
    owners = {int((bins == b).nonzero()[0, 0]) // 4 for b in found.bins}
    assert len(found.bins) == int(alone.sum()) and len(owners) > 1
    assert (_scored(found, planted, x) > 60).all()


def test_the_classifier_is_unchanged_up_to_the_gain():
    x, _ = rl.datasets.load("cifar100")
    model = _models((3, 32, 32), 5)["cnn"]
    planted = imprint.attach(model, (3, 32, 32), 128)
    with torch.no_grad():
        before, after = model(x), planted(x)
    assert torch.equal(before.argmax(1), after.argmax(1))
    assert (before - after).abs().max() < 1e-3
    assert (planted[0](x) - x).flatten(1).norm(dim=1).max() <= imprint.GAIN


def test_thresholds_sit_at_normal_quantiles_with_a_floor():
    t = imprint.thresholds(0.5, 0.1, 4, -0.01).tolist()
    assert t[0] == -0.01 and t[2] == pytest.approx(0.5)
    assert t[1] == pytest.approx(0.5 - 0.06744897501960817)
    assert t[3] == pytest.approx(0.5 + 0.06744897501960817)


def test_binomial_expectation_matches_a_simulation():
    draws = torch.randint(128, (4000, 64), generator=torch.Generator().manual_seed(0))
    counts = torch.zeros(4000, 128).scatter_add_(1, draws, torch.ones(4000, 64))
    alone = (counts.gather(1, draws) == 1).float().mean()
    assert abs(alone - imprint.expected_fraction(64, 128)) < 0.01


def test_sample_batch_is_real_first_then_distinct_crops():
    x, y = imprint.sample_batch("cifar100", 30, seed=1)
    pack, _ = rl.datasets.load("cifar100")
    assert x.shape == (30, 3, 32, 32) and len(y) == 30
    assert (torch.cdist(x[:20].flatten(1), pack.flatten(1)).min(1).values == 0).all()
    assert torch.pdist(x.flatten(1)).min() > 0


def test_trap_weights_catch_images_and_every_one_is_exact():
    x, y = imprint.sample_batch("cifar100", 16, seed=2)
    torch.manual_seed(0)
    model = imprint.trap(rl.models.mlp((3, 32, 32), [512, 16], 10, activation="relu"), seed=1)
    found = imprint.recover_trapped(model, rl.fl.client_update(model, x, y % 10))
    distance = torch.cdist(found.flatten(1).float(), x.flatten(1))
    assert len(found) >= 8 and found.shape[1:] == (3, 32, 32)
    assert distance.argmin(1).unique().numel() == len(found)
    assert (10 * torch.log10(x[0].numel() / distance.min(1).values ** 2) > 60).all()


def test_trap_fires_for_about_the_rate_it_was_calibrated_for():
    torch.manual_seed(1)
    model = imprint.trap(rl.models.mlp((1, 16, 16), [200], 10, activation="relu"), rate=0.1)
    public = imprint.public_images((1, 16, 16))
    assert abs((model[1](public.flatten(1)) > 0).float().mean() - 0.1) < 0.02


@pytest.mark.parametrize("call, error, match", [
    (lambda m: imprint.attach(m, (3, 32, 32), 0), ValueError, "bins"),
    (lambda m: imprint.attach(m, (3, 32, 32), 8, statistic="contrast"), ValueError, "statistic"),
    (lambda m: imprint.attach(m, (3, 32, 32), 8, statistic=torch.ones(5)), ValueError, "3072"),
    (lambda m: imprint.attach("net", (3, 32, 32), 8), TypeError, "nn.Module"),
    (lambda m: imprint.attach(m, (4, 32, 32), 8), ValueError, "public"),
    (lambda m: imprint.attach(m, (3, 32, 32), 8, gain=0), ValueError, "gain"),
    (lambda m: imprint.recover(m, {"0.weight": torch.zeros(1)}), TypeError, "attach"),
    (lambda m: imprint.trap(m, rate=0), ValueError, "rate"),
    (lambda m: imprint.trap(rl.models.mlp((3, 32, 32), [4], 3)), TypeError, "ReLU"),
    (lambda m: imprint.expected_fraction(0, 8), ValueError, "batch_size"),
])
def test_bad_inputs_raise_clear_errors(call, error, match):
    model = rl.models.mlp((3, 32, 32), [4], 3, activation="relu")
    with pytest.raises(error, match=match):
        call(model)


def test_bad_messages_raise_clear_errors():
    x, y = rl.datasets.load("cifar100", n=4)
    planted = imprint.attach(rl.models.mlp((3, 32, 32), [4], 3), (3, 32, 32), 8)
    grads = rl.fl.client_update(planted, x, y % 3)
    with pytest.raises(KeyError, match="0.linear.bias"):
        imprint.recover(planted, {"0.linear.weight": grads["0.linear.weight"]})
    with pytest.raises(ValueError, match="NaN"):
        imprint.recover(planted, {**grads, "0.linear.bias": grads["0.linear.bias"] * float("nan")})
    other = imprint.attach(rl.models.mlp((3, 32, 32), [4], 3), (3, 32, 32), 16)
    with pytest.raises(ValueError, match="shapes"):
        imprint.recover(other, grads)
    with pytest.raises(ValueError, match="batch_size"):
        imprint.recover(planted, grads, batch_size=0)


def test_noise_on_the_message_is_caught_by_the_verification():
    x, y = rl.datasets.load("cifar100", n=16)
    planted = imprint.attach(rl.models.mlp((3, 32, 32), [8], 5, activation="relu"), (3, 32, 32), 128)
    grads = rl.fl.client_update(planted, x, y % 5)
    scale = float(grads["0.linear.bias"].abs().max())
    noisy = rl.defences.add_noise(grads, 1e-2 * scale, torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(imprint.reconstruct(planted, noisy, batch_size=16)) == 0


@settings(max_examples=6, deadline=None)
@given(channels=st.integers(1, 3), side=st.integers(4, 12), bins=st.integers(2, 40), batch=st.integers(1, 10),
       activation=st.sampled_from(["relu", "tanh", "sigmoid", "gelu"]), seed=st.integers(0, 10_000))
def test_any_shape_model_and_batch_lone_images_exact_and_no_mixture_returned(channels, side, bins, batch,
                                                                            activation, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, channels, side, side, generator=generator)
    public = torch.rand(50, channels, side, side, generator=generator)
    torch.manual_seed(seed)
    model = rl.models.mlp((channels, side, side), [6], 5, activation=activation)
    planted = imprint.attach(model, (channels, side, side), bins, statistic="random", seed=seed,
                             public=public)
    message = rl.fl.client_update(planted, x, torch.randint(5, (batch,)))
    found = imprint.recover(planted, message, batch_size=batch)
    bins_of, alone = _truth(planted, x)
    counts = torch.bincount(bins_of, minlength=bins)
    assert (counts[found.bins] == 1).all() and set(found.bins.tolist()) <= set(bins_of[alone].tolist())
    if len(found.bins):
        assert (_scored(found, planted, x) > 60).all()


def test_dlg_lenet_behind_the_imprint():
    x, y = rl.datasets.load("cifar100", n=10)
    torch.manual_seed(3)
    planted = imprint.attach(rl.models.lenet_dlg(), (3, 32, 32), 64, seed=3)
    found = imprint.recover(planted, rl.fl.client_update(planted, x, y))
    bins_of, alone = _truth(planted, x)
    assert sorted(found.bins.tolist()) == sorted(bins_of[alone].tolist()) and len(found.bins) >= 5


@pytest.mark.gpu
def test_on_cuda_the_attack_returns_the_same_images():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x, y = rl.datasets.load("cifar100", n=12)
    planted = imprint.attach(_models((3, 32, 32), 6)["mlp_relu"], (3, 32, 32), 64)
    on_cpu = imprint.recover(planted, rl.fl.client_update(planted, x, y % 10))
    cuda = planted.cuda()
    on_gpu = imprint.recover(cuda, rl.fl.client_update(cuda, x.cuda(), (y % 10).cuda()))
    assert torch.equal(on_cpu.bins, on_gpu.bins)
    torch.testing.assert_close(on_cpu.images, on_gpu.images, atol=1e-4, rtol=0)


def test_first_layer_signals_tell_an_imprint_and_trap_weights_from_a_random_init():
    """Rank 1 for an imprint's rows, a low firing rate for trap weights, about half otherwise."""
    x = torch.rand(16, 3, 8, 8)
    honest = rl.models.mlp((3, 8, 8), [64], 10, activation="relu")
    planted = imprint.attach(honest, (3, 8, 8), bins=16, public=torch.rand(64, 3, 8, 8))
    planted_layer = next(m for m in planted.modules() if isinstance(m, imprint.Imprint)).linear
    assert imprint.first_layer_signals(planted_layer, x)[0] == 1
    assert imprint.first_layer_signals(honest[1], x)[0] == 64
    assert imprint.first_layer_signals(imprint.trap(honest, seed=0)[1], x)[1] < \
        imprint.first_layer_signals(honest[1], x)[1]
    with pytest.raises(TypeError, match="nn.Linear"):
        imprint.first_layer_signals(honest, x)
