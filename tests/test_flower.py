"""Chapter 08: the Flower apps, the curious server and the conversion of replies into messages.

The two end-to-end tests run real Flower: ``run_simulation`` (Ray) and the deployment engine
(a SuperLink and two SuperNodes as processes, ``flwr run``); each costs about a minute on a
loaded 2-core machine, most of it Ray's and the processes' start.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import psutil
import pytest
import torch

import recon_lib as rl
from recon_lib import deployment, flower, victims

SMALL = flower.Setup(n_clients=2, rounds=2, width=16, lr=0.1)


def _alive(pids: set[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


# --- Setup ------------------------------------------------------------------------------------
def test_setup_round_trips_through_a_config_record() -> None:
    setup = flower.Setup(dataset="cifar100", arch="cnn", width=6, local_steps=5, lr=0.25, n_test=0)
    config = setup.to_config()
    assert config["local-steps"] == 5 and "batch-size" in config
    assert flower.Setup.from_config({**config, "server-round": 3}) == setup


@pytest.mark.parametrize("change, word", [({"width": 0}, "width"), ({"lr": -1.0}, "lr"),
                                          ({"activation": "softplus"}, "activation"),
                                          ({"batchnorm": "train"}, "batch_size"),
                                          ({"arch": "cnn", "batchnorm": "eval"}, "batchnorm")])
def test_setup_rejects_bad_values_by_name(change: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        flower.Setup(**change)


def test_build_model_is_seeded_and_batchnorm_mode_follows_the_setup() -> None:
    a, b = flower.build_model(SMALL), flower.build_model(SMALL)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    bn = flower.build_model(SMALL.replace(batchnorm="eval"))
    norm = next(m for m in bn if isinstance(m, torch.nn.BatchNorm1d))
    assert bn.training and not norm.training
    assert flower.parameter_names(bn) == ["1.weight", "1.bias", "2.weight", "2.bias", "4.weight", "4.bias"]


def test_shards_are_disjoint_deterministic_and_exclude_the_test_set() -> None:
    setup = flower.Setup(n_clients=10, batch_size=40)
    x_all, _ = rl.datasets.load("mnist")
    seen = []
    for k in range(10):
        x, _ = flower.shard(setup, k, 1)
        assert torch.equal(x, flower.shard(setup, k, 1)[0])
        seen.append(x.flatten(1))
    stacked = torch.cat(seen)
    assert len(torch.unique(stacked, dim=0)) == 400  # 10 disjoint shards of 40 = every training digit
    test_x, _ = flower.test_set(setup)
    assert torch.equal(test_x, x_all[-100:])
    assert not (torch.cdist(stacked, test_x.flatten(1)) == 0).any()
    with pytest.raises(ValueError, match="partition"):
        flower.shard(setup, 10, 1)
    with pytest.raises(ValueError, match="batch_size"):
        flower.shard(setup.replace(batch_size=401), 0, 1)  # more than all 400 training digits


# --- The client's reply and the server's conversion ------------------------------------------
def test_fedsgd_reply_converts_to_the_autograd_gradient() -> None:
    setup = SMALL.replace(batch_size=3)
    model = flower.build_model(setup)
    message, x, y = victims.client_message(model, setup, 1, 1)
    gradient = rl.fl.client_update(model, x, y)
    assert set(message) == set(gradient)
    for name, g in gradient.items():  # exact up to float32 round-off of θ − θ′
        assert torch.allclose(message[name], g, rtol=1e-4, atol=1e-6 * float(g.abs().max())), name


def test_fedavg_reply_converts_to_the_mean_of_local_gradients() -> None:
    """E > 1: (θ − θ′)/(lr·E) is chapter 07's FedAvg message (vmapped, written independently)."""
    setup = SMALL.replace(batch_size=2, local_steps=5, lr=0.3)
    model = flower.build_model(setup)
    message, x, y = victims.client_message(model, setup, 0, 1)
    reference = rl.defences.fedavg_update(model, x, y, local_steps=5, lr=0.3)
    for name, value in reference.items():
        assert torch.allclose(message[name], value, rtol=1e-4, atol=1e-6), name
    one_step = rl.fl.client_update(model, x, y)
    assert not torch.allclose(message["1.weight"], one_step["1.weight"], rtol=1e-3)  # not one gradient


def test_local_update_leaves_the_global_model_alone() -> None:
    model = flower.build_model(SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flower.local_update(model, *flower.shard(SMALL, 0, 1), local_steps=3, lr=0.5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_to_message_checks_its_arguments() -> None:
    state = {"w": torch.ones(2)}
    with pytest.raises(ValueError, match="missing"):
        flower.to_message(state, {}, ["w"], lr=0.1, local_steps=1)
    with pytest.raises(ValueError, match="lr"):
        flower.to_message(state, state, ["w"], lr=0.0, local_steps=1)
    with pytest.raises(ValueError, match="local_steps"):
        flower.to_message(state, state, ["w"], lr=0.1, local_steps=0)


# --- Real Flower runs -------------------------------------------------------------------------
def _check_captures(setup: flower.Setup, captures: list, history: dict) -> None:
    assert sorted((c.server_round, c.partition) for c in captures) == [
        (r, k) for r in range(1, setup.rounds + 1) for k in range(setup.n_clients)]
    for capture in captures:
        model = victims.global_model(setup, history, capture.server_round - 1)
        expected, x, _ = victims.client_message(model, setup, capture.partition, capture.server_round)
        for name, value in expected.items():  # what the server captured = what the client computed
            assert torch.allclose(capture.message[name], value, rtol=1e-5, atol=1e-7), name
        x_hat = rl.analytic.reconstruct(model, capture.message)
        assert rl.metrics.psnr(x_hat.clamp(0, 1), x[0]) > 100


#: Run in a child process: a Ray that failed to start can leave threads that block the
#: interpreter's exit, which must not hang the test session. The child saves what the curious
#: server kept and leaves with os._exit; the parent checks it.
_SIMULATION_CHILD = """
import os, sys, torch
from recon_lib import flower
setup = flower.Setup(n_clients=2, rounds=2, width=16, lr=0.1)
seen = []
try:
    strategy = flower.simulate(setup, attack=lambda model, capture: seen.append(capture.partition) or 1)
except flower.RayStartError as error:
    print("RAY DID NOT START:", error, flush=True)
    os._exit(3)
torch.save(dict(captures=strategy.captures, history=strategy.history, sent=strategy.sent, seen=seen),
           sys.argv[1])
os._exit(0)
"""


def test_simulation_captures_every_reply_and_the_closed_form_rebuilds_it(tmp_path) -> None:
    out = tmp_path / "strategy.pt"
    child = subprocess.Popen([sys.executable, "-c", _SIMULATION_CHILD, str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = child.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # Ray's own processes share the child's session
        child.communicate()
        pytest.fail("run_simulation did not finish in 420 s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    if child.returncode == 3:  # the machine, not the code: Ray's 30 s limit under heavy load
        pytest.skip(log.strip().splitlines()[-1])
    assert child.returncode == 0, log[-3000:]
    kept = torch.load(out, weights_only=False)
    _check_captures(SMALL, kept["captures"], kept["history"])
    assert sorted(kept["seen"]) == [0, 0, 1, 1] and all(c.result == 1 for c in kept["captures"])
    # FedAvg stays honest: the new global weights are the mean of the two clients' weights.
    sent, history = kept["sent"][2], kept["history"]
    last = [c for c in kept["captures"] if c.server_round == 2]
    expected = {k: sent[k] - SMALL.lr * sum(c.message[k] for c in last) / 2 for k in sent}
    for name, value in expected.items():
        assert torch.allclose(history[2][name], value, atol=1e-6), name
    replayed = victims.replay_fedavg(SMALL)  # the benchmark's Ray-free replay gives the same weights
    for server_round, state in history.items():
        for name, value in state.items():
            assert torch.allclose(replayed[server_round][name], value, atol=1e-6), (server_round, name)


def test_local_grid_runs_flowers_loop_without_ray() -> None:
    """The lighter backend: Flower's strategy loop and ClientApp over an in-process Grid."""
    strategy = flower.run_local(SMALL)
    _check_captures(SMALL, strategy.captures, strategy.history)
    replayed = victims.replay_fedavg(SMALL)
    assert all(torch.allclose(replayed[r][k], v, atol=1e-6) for r, state in strategy.history.items()
               for k, v in state.items())
    assert sorted({c.node_id for c in strategy.captures}) == [1000, 1001]


def test_deployment_engine_runs_the_app_and_leaves_no_process() -> None:
    with pytest.raises(RuntimeError, match="stop me"):
        with deployment.local_federation(2) as federation:
            pids = federation.pids()
            assert len(pids) >= 3  # a SuperLink and two SuperNodes (and their helpers)
            setup, captures, history = federation.run(SMALL.replace(rounds=1))
            assert setup == SMALL.replace(rounds=1)
            _check_captures(setup, captures, history)
            pids |= federation.pids()
            raise RuntimeError("stop me")  # an error inside the block must still stop everything
    assert _alive(pids) == []


def test_deployment_run_refuses_a_setup_for_another_federation_size() -> None:
    federation = deployment.Federation(home=deployment.APP_DIR, address="127.0.0.1:1", n_nodes=3)
    with pytest.raises(ValueError, match="n_clients"):
        federation.run(SMALL)
