"""Chapter 08: realistic victims — attacks, scores and the diagnostics that name a failed condition."""
from __future__ import annotations

import math

import pytest
import torch

import recon_lib as rl
from recon_lib import flower, victims


def test_batchnorm_in_train_mode_zeroes_the_bias_gradient() -> None:
    """BN subtracts the batch mean, so the first layer's bias cannot change the loss: ∂b = Σδ = 0."""
    setup = victims.MNIST.replace(batchnorm="train", batch_size=4)
    model = flower.build_model(setup)
    message, x, y = victims.client_message(model, setup, 0, 1)
    autograd = rl.fl.client_update(flower.build_model(setup), x, y)
    assert autograd["1.bias"].abs().max() < 1e-7 * autograd["1.weight"].abs().max()
    assert message["1.bias"].abs().max() < 1e-6
    images = victims.run_attack("closed_form", model, message, 4)  # divides by round-off
    assert max(victims.score(images, x)[0]) < 20


def test_batchnorm_in_eval_mode_keeps_the_closed_form_exact() -> None:
    setup = victims.MNIST.replace(batchnorm="eval")
    model = flower.build_model(setup)
    message, x, _ = victims.client_message(model, setup, 0, 1)
    assert victims.score(victims.run_attack("closed_form", model, message, 1), x)[0][0] > 100


def test_attacker_replica_computes_the_same_function_without_running_stats() -> None:
    model = flower.build_model(victims.MNIST.replace(batchnorm="train", batch_size=4))
    replica = victims.attacker_replica(model)
    x, _ = flower.shard(victims.MNIST, 0, 1)
    x = torch.cat([x, flower.shard(victims.MNIST, 1, 1)[0], flower.shard(victims.MNIST, 2, 1)[0]])
    assert torch.allclose(replica(x), model(x), atol=1e-6)
    assert replica[2].running_mean is None and model[2].running_mean is not None


def test_score_pairs_a_batch_and_credits_one_image_to_every_member() -> None:
    x = rl.datasets.load("mnist", n=3)[0]
    psnr, ssim = victims.score(x.flip(0), x)
    assert min(psnr) > 100 and min(ssim) > 0.99
    psnr, _ = victims.score(x[:1], x)
    assert psnr[0] > 100 and max(psnr[1:]) < 30
    with pytest.raises(ValueError, match="2 reconstructions for 3"):
        victims.score(x[:2], x)


def test_measure_records_a_failed_condition_as_not_recovered() -> None:
    row = victims.Row("cifar100", "relu CNN", victims.CIFAR.replace(arch="cnn", width=6, activation="relu"),
                      "cnn_exact", 0, victims.CLAIM3)
    out = victims.measure(row, [0, 1])
    assert out["frac_20db"] == 0 and out["n_failed"] == 2 and "ReLU" in out["failures"][0]
    ok = victims.measure(victims.Row("t", "sigmoid", victims.MNIST, "closed_form"), [0, 1, 2])
    # benchmarks/victims.py passes --device through; on the CPU (the default) nothing changes
    on_cpu = victims.measure(victims.Row("t", "sigmoid", victims.MNIST, "closed_form"), [0, 1, 2],
                             device="cpu")
    assert on_cpu["psnr"] == ok["psnr"]
    assert ok["frac_40db"] == 1 and len(ok["psnr"]) == 3 and ok["dead_units"] == 0 and ok["rank_dw"] == 1


def test_h_below_b_leaves_the_batch_unrecovered_and_h_at_b_recovers_it() -> None:
    def row(h: int) -> victims.Row:
        return victims.Row("w", f"h={h}", victims.MNIST.replace(width=h, batch_size=6), "span")

    below, at = victims.measure(row(4), [0]), victims.measure(row(6), [0])
    assert below["rank_dw"] == 4 and below["frac_40db"] < 0.5
    assert at["rank_dw"] == 6 and at["frac_40db"] == 1


def test_trained_rows_need_the_history() -> None:
    with pytest.raises(ValueError, match="history"):
        victims.global_model(victims.MNIST, None, 3)


def test_table_rows_cover_every_question_of_the_chapter() -> None:
    rows = victims.table_rows()
    assert {r.group for r in rows} == {"training", "activation", "batchnorm", "fedavg", "width", "cifar100"}
    assert {r.attack for r in rows} == set(victims.ATTACKS)
    assert all(r.condition for r in rows) and len({(r.label, r.attack) for r in rows}) == len(rows)


def test_accuracy_restores_the_mode() -> None:
    model = flower.build_model(victims.MNIST.replace(batchnorm="train", batch_size=2))
    x, y = flower.test_set(victims.MNIST)
    value = victims.accuracy(model, x, y)
    assert 0 <= value <= 1 and model.training and not math.isnan(value)
