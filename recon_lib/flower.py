"""Chapter 08: the course's attacks inside a real federation, run by Flower (flwr ≥ 1.42).

The apps a Flower federation runs, and the curious server that attacks what they send:

* :data:`client_app` — a Flower ``ClientApp``. Each round it receives the global weights θ and
  the server's :class:`Setup` (as a ``ConfigRecord``), draws B images of its private shard,
  takes E full-batch SGD steps of size lr (E = 1 is FedSGD) and replies with its new weights
  θ′, as every FedAvg client does.
* :class:`CuriousFedAvg` — a subclass of Flower's ``FedAvg`` that aggregates honestly but
  keeps every reply and turns it into the message the attacks of chapters 01–04 read
  (:func:`to_message`): (θ − θ′)/(lr·E). For E = 1 that *is* the client's gradient, up to the
  float32 round-off of the subtraction; for E > 1 it is the mean of the E local gradients, each
  taken at a different point θ₀, θ₁, … — the attacks then approximate it by one gradient at θ₀.
* :data:`server_app` / :func:`simulate` — the same apps under Flower's deployment engine
  (``flwr run``, settings from the run config) or in-process (``flwr.simulation.run_simulation``).

:mod:`recon_lib.deployment` starts a SuperLink and SuperNodes as real processes;
:mod:`recon_lib.victims` measures what the attacks recover from realistic victims.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from torch import Tensor, nn
from torch.nn import functional as F

from . import _validate as check
from . import datasets, models

State = dict[str, Tensor]
ARCHITECTURES = ("mlp", "cnn")
BATCHNORM = ("none", "train", "eval")
N_CLASSES = {"cifar100": 100, "imagenet": 1000}  # where the sample pack keeps no label names
CLIENT_CPUS = 2  # Ray CPUs per virtual client: 2 on a 2-core machine = one actor, started once


# --- What the server configures: plain data, sent to every client as a ConfigRecord ----------
@dataclass(frozen=True)
class Setup:
    """One federation: data, victim model and the clients' local training (chapter 08).

    Attributes:
        dataset: a name of :func:`recon_lib.datasets.load` (``"mnist"``, ``"cifar100"``, …).
        arch: ``"mlp"`` (Flatten → Linear(d, h) [→ BatchNorm] → activation → head) or ``"cnn"``
            (one 3×3 "same" conv of ``width`` kernels → activation → Flatten → head).
        width: h, the first layer's units (mlp) or kernels (cnn).
        activation: a name of :data:`recon_lib.models.ACTIVATIONS`.
        batchnorm: ``"none"``; ``"train"`` (BatchNorm1d after the first layer, batch statistics)
            or ``"eval"`` (the same layer with the running statistics): mlp only.
        n_clients: SuperNodes, each holding a strided shard of the non-test images.
        batch_size: B, images a client trains on per round (drawn from its shard).
        local_steps: E full-batch SGD steps per round (1 = FedSGD).
        lr: the clients' learning rate.
        rounds: federated rounds.
        seed: seeds the model's initial weights and every client's draws.
        n_test: last images of the dataset held out as the test set (never in a shard).
    """

    dataset: str = "mnist"
    arch: str = "mlp"
    width: int = 64
    activation: str = "sigmoid"
    batchnorm: str = "none"
    n_clients: int = 2
    batch_size: int = 1
    local_steps: int = 1
    lr: float = 0.1
    rounds: int = 1
    seed: int = 0
    n_test: int = 100

    def __post_init__(self) -> None:
        check.choice("dataset", self.dataset, datasets.NAMES)
        check.choice("arch", self.arch, ARCHITECTURES)
        check.choice("activation", self.activation, tuple(models.ACTIVATIONS))
        check.choice("batchnorm", self.batchnorm, BATCHNORM)
        for name in ("width", "n_clients", "batch_size", "local_steps", "rounds"):
            check.integer(name, getattr(self, name), low=1)
        check.integer("seed", self.seed, low=0)
        check.integer("n_test", self.n_test, low=0)
        check.positive("lr", self.lr)
        if self.batchnorm != "none" and self.arch != "mlp":
            raise ValueError("batchnorm applies to arch='mlp' only")
        if self.batchnorm == "train" and self.batch_size < 2:
            raise ValueError("batchnorm='train' needs batch_size >= 2 (batch statistics of one image "
                             "are undefined)")

    def to_config(self) -> dict[str, Any]:
        """The setup as a flat dict with Flower's key style (``batch-size``)."""
        return {name.replace("_", "-"): value for name, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Setup:
        """The setup from a ConfigRecord or run config (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {key.replace("-", "_"): value for key, value in config.items()}
        return cls(**{key: value for key, value in values.items() if key in names})

    def replace(self, **changes: Any) -> Setup:
        """A copy with some fields changed: ``setup.replace(local_steps=5)``."""
        return dataclasses.replace(self, **changes)


def build_model(setup: Setup) -> nn.Sequential:
    """The victim model of ``setup``, its weights seeded by ``setup.seed`` (the server's θ₀)."""
    x, _ = datasets.load(setup.dataset, n=1)
    shape = tuple(x.shape[1:])
    n_classes = len(datasets.label_names(setup.dataset)) or N_CLASSES[setup.dataset]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(setup.seed)
        if setup.arch == "cnn":
            return models.cnn(shape, [setup.width], n_classes, activation=setup.activation)
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(math.prod(shape), setup.width)]
        if setup.batchnorm != "none":
            layers.append(nn.BatchNorm1d(setup.width))
        layers += [models.make_activation(setup.activation), nn.Linear(setup.width, n_classes)]
        model = nn.Sequential(*layers)
    model.in_shape = shape  # type: ignore[assignment]  # torch types module attributes as Tensor | Module
    set_mode(model, setup)
    return model


def set_mode(model: nn.Module, setup: Setup) -> nn.Module:
    """Train mode, except BatchNorm layers when ``setup.batchnorm == "eval"`` (running stats)."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d) and setup.batchnorm == "eval":
            module.eval()
    return model


def parameter_names(model: nn.Module) -> list[str]:
    """The trainable parameters: what a message holds (BatchNorm running stats are buffers)."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


# --- The client: data, local training, reply ------------------------------------------------
def shard(setup: Setup, partition: int, server_round: int) -> tuple[Tensor, Tensor]:
    """The B private images client ``partition`` trains on in round ``server_round``.

    Client k holds every n-th non-test image of one fixed shuffle (an IID split); each round it draws B of
    them without replacement, seeded by (seed, k, round), so every run sees the same batches.
    With more clients than shards of B images (a throughput benchmark of 1000 clients on the
    500-digit pack), client k shares the shard of client k mod (images // B).
    """
    check.integer("partition", partition, low=0, high=setup.n_clients - 1)
    x, y = datasets.load(setup.dataset)
    order = torch.randperm(len(x) - setup.n_test, generator=torch.Generator().manual_seed(0))
    groups = max(1, min(setup.n_clients, len(order) // setup.batch_size))
    pool = order[partition % groups::groups]  # a fixed shuffle: classes mixed in every shard
    if len(pool) < setup.batch_size:
        raise ValueError(f"client {partition} holds {len(pool)} images, fewer than batch_size="
                         f"{setup.batch_size}; use fewer clients or a smaller batch")
    generator = torch.Generator().manual_seed(setup.seed * 1_000_003 + partition * 1009 + server_round)
    picks = pool[torch.randperm(len(pool), generator=generator)[:setup.batch_size]]
    return x[picks], y[picks]


def test_set(setup: Setup) -> tuple[Tensor, Tensor]:
    """The held-out images (the last ``n_test`` of the dataset)."""
    x, y = datasets.load(setup.dataset)
    return x[len(x) - setup.n_test:], y[len(y) - setup.n_test:]


def local_update(model: nn.Module, x: Tensor, y: Tensor, *, local_steps: int, lr: float) -> State:
    """E full-batch SGD steps of cross-entropy on (x, y) from the model's weights; the new state.

    The model itself is left unchanged; the returned state dict holds every parameter and
    buffer (BatchNorm running statistics move in train mode, as in any PyTorch client).
    """
    steps, lr = check.integer("local_steps", local_steps, low=1), check.positive("lr", lr)
    trained = copy.deepcopy(model)
    optimizer = torch.optim.SGD(trained.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(trained(x), y).backward()
        optimizer.step()
    return {name: value.detach().clone() for name, value in trained.state_dict().items()}


client_app = ClientApp()


@client_app.train()
def _train(msg: Message, context: Context) -> Message:
    """One round of one client: load θ, train on this round's private batch, reply θ′."""
    config = msg.content.config_records["config"]
    setup = Setup.from_config(config)
    model = build_model(setup)
    model.load_state_dict(msg.content.array_records["arrays"].to_torch_state_dict())
    partition = int(str(context.node_config["partition-id"]))
    x, y = shard(setup, partition, int(str(config["server-round"])))
    state = local_update(model, x, y, local_steps=setup.local_steps, lr=setup.lr)
    # "partition" is bookkeeping for scoring the attacks afterwards; no attack reads it.
    metrics = MetricRecord({"num-examples": len(x), "partition": partition})
    return Message(RecordDict({"arrays": ArrayRecord(state), "metrics": metrics}), reply_to=msg)


# --- The curious server ----------------------------------------------------------------------
def to_message(sent: Mapping[str, Tensor], received: Mapping[str, Tensor], names: Iterable[str], *,
               lr: float, local_steps: int) -> State:
    """What the attacks read, from a FedAvg reply: (θ − θ′)/(lr·E) for every parameter in ``names``.

    E = 1 (FedSGD): θ′ = θ − lr·g, so this is the gradient g itself, up to the round-off of
    subtracting two float32 weights (computed here in float64). E > 1: the mean of the E local
    gradients g(θ₀), …, g(θ_{E−1}); an attack that treats it as one gradient at θ₀ is the
    approximation, and it degrades as the local steps move θ (chapter 08 measures how far).
    """
    lr, steps = check.positive("lr", lr), check.integer("local_steps", local_steps, low=1)
    missing = [name for name in names if name not in sent or name not in received]
    if missing:
        raise ValueError(f"parameters {missing} are missing from the sent or received weights")
    return {name: ((sent[name].double() - received[name].double()) / (lr * steps)).float()
            for name in names}


@dataclass
class Capture:
    """One client's reply in one round, as the curious server keeps it."""

    server_round: int
    node_id: int
    partition: int
    batch_size: int
    message: State
    result: Any = None  # what the attack returned, if the strategy ran one


Attack = Callable[[nn.Module, Capture], Any]


class CuriousFedAvg(FedAvg):
    """Flower's FedAvg, honest in what it aggregates, curious in what it keeps.

    Every round it remembers the weights it sent (:attr:`sent`) and, per reply, a
    :class:`Capture` with the attackable message (:func:`to_message`); ``attack(model, capture)``
    runs on each capture as it arrives (the model is the round's global model), and the global
    weights after each round are kept in :attr:`history` (round 0 = the initial weights).

    Args:
        setup: the federation; its lr and E are the server's own settings (it sent them).
        attack: optional ``(model, capture) -> result`` run on every reply.
        keep_messages: keep each capture's message (``False``: attack, then drop it; for
            thousands of clients).
        store: a file to ``torch.save`` the captures and history to after every round (the
            deployment engine runs the ServerApp in another process).
        **kwargs: passed to ``FedAvg`` (by default every client trains, none evaluates).
    """

    def __init__(self, setup: Setup, attack: Attack | None = None, *, keep_messages: bool = True,
                 store: str | Path | None = None, **kwargs: Any) -> None:
        kwargs = {"fraction_evaluate": 0.0, "min_train_nodes": setup.n_clients,
                  "min_available_nodes": setup.n_clients, **kwargs}
        with _quiet():  # FedAvg logs a warning for fraction_evaluate=0, which is intended here
            super().__init__(**kwargs)
        self.setup, self.attack, self.keep_messages = setup, attack, keep_messages
        self.store = None if store is None else Path(store)
        self.model = build_model(setup)
        self.names = parameter_names(self.model)
        self.sent: dict[int, State] = {}
        self.history: dict[int, State] = {}
        self.captures: list[Capture] = []
        self.seconds: dict[int, float] = {}

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        """Remember θ of this round, then configure it as FedAvg does."""
        self._started = time.perf_counter()
        self.sent[server_round] = arrays.to_torch_state_dict()
        self.history.setdefault(server_round - 1, self.sent[server_round])
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Keep (and optionally attack) every reply, then aggregate honestly."""
        replies = list(replies)
        model = set_mode(build_model(self.setup), self.setup)
        model.load_state_dict(self.sent[server_round])
        for reply in replies:
            if reply.has_error():
                continue
            counts = reply.content.metric_records["metrics"]
            received = reply.content.array_records["arrays"].to_torch_state_dict()
            capture = Capture(server_round, int(reply.metadata.src_node_id), int(str(counts["partition"])),
                              int(str(counts["num-examples"])),
                              to_message(self.sent[server_round], received, self.names,
                                         lr=self.setup.lr, local_steps=self.setup.local_steps))
            if self.attack is not None:
                capture.result = self.attack(model, capture)
            if not self.keep_messages:
                capture.message = {}
            self.captures.append(capture)
        arrays, metrics = super().aggregate_train(server_round, replies)
        if arrays is not None:
            self.history[server_round] = arrays.to_torch_state_dict()
        self.seconds[server_round] = time.perf_counter() - self._started
        if self.store is not None:
            torch.save({"setup": self.setup.to_config(), "captures": [dataclasses.asdict(c) for c in
                                                                      self.captures],
                        "history": self.history}, self.store)
        return arrays, metrics

    def global_model(self, server_round: int) -> nn.Module:
        """The global model after ``server_round`` rounds (0 = the initial weights)."""
        if server_round not in self.history:
            raise ValueError(f"no global model for round {server_round}; have {sorted(self.history)}")
        model = build_model(self.setup)
        model.load_state_dict(self.history[server_round])
        return model


@contextmanager
def _quiet(enabled: bool = True) -> Iterator[None]:
    """Flower's log at ERROR level only, for the duration of the block."""
    logger = logging.getLogger("flwr")
    level = logger.level
    if enabled:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _serve(grid: Grid, setup: Setup, strategy: CuriousFedAvg) -> None:
    strategy.start(grid=grid, initial_arrays=ArrayRecord(build_model(setup).state_dict()),
                   num_rounds=setup.rounds, train_config=ConfigRecord(setup.to_config()))


server_app = ServerApp()


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    """The deployment engine's ServerApp: settings from the run config, captures to a file."""
    config = dict(context.run_config)
    _serve(grid, Setup.from_config(config), CuriousFedAvg(Setup.from_config(config),
                                                          store=str(config["capture-file"])))


def load_captures(path: str | Path) -> tuple[Setup, list[Capture], dict[int, State]]:
    """What :data:`server_app` stored: the setup, every capture and the global weights per round."""
    saved = torch.load(path, weights_only=True)
    return (Setup.from_config(saved["setup"]), [Capture(**c) for c in saved["captures"]],
            saved["history"])


# --- In-process, without Ray: Flower's own loop over a Grid that calls the ClientApp -----------
class LocalGrid(Grid):
    """A Flower ``Grid`` whose n nodes run :data:`client_app` in this process, one after another.

    Flower 1.42's ``run_simulation`` has one backend, Ray; this grid is the lighter one: the
    strategy's real ``start`` loop, real ``Message``/``RecordDict`` objects and the real
    ``ClientApp`` — only the transport (Ray or gRPC) is left out. Node ``FIRST_NODE + k`` holds
    partition k.
    """

    FIRST_NODE = 1000  # node id 1 is the SuperLink's

    def __init__(self, n_nodes: int) -> None:
        self.n_nodes = check.integer("n_nodes", n_nodes, low=1)
        self._replies: dict[str, Message] = {}

    def set_run(self, run: Any) -> None:
        """Nothing to set: one run at a time."""

    @property
    def run(self) -> Any:
        """No Run record: messages carry run id 0."""
        return None

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        """A message to node ``dst_node_id``."""
        return Message(content=content, message_type=message_type, dst_node_id=dst_node_id, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        """One id per node."""
        return list(range(self.FIRST_NODE, self.FIRST_NODE + self.n_nodes))

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Run the ClientApp on every message now; keep the replies."""
        ids = []
        for message in messages:
            node = int(message.metadata.dst_node_id)
            context = Context(run_id=0, node_id=node, state=RecordDict(), run_config={},
                              node_config={"partition-id": node - self.FIRST_NODE,
                                           "num-partitions": self.n_nodes})
            key = f"{len(self._replies)}"
            self._replies[key] = client_app(message, context)
            ids.append(key)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """The replies of the given messages."""
        return [self._replies.pop(key) for key in message_ids]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None
                         ) -> Iterable[Message]:
        """Push, then pull: the ClientApps run synchronously."""
        return self.pull_messages(self.push_messages(messages))


def run_local(setup: Setup, attack: Attack | None = None, *, keep_messages: bool = True) -> CuriousFedAvg:
    """The federation on a :class:`LocalGrid`: Flower's loop and apps, no Ray (starts in no time)."""
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity

    # The identity a ServerApp process gets from its SuperLink (run_simulation sets the same).
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID
    strategy = CuriousFedAvg(setup, attack, keep_messages=keep_messages)
    with _quiet():
        _serve(LocalGrid(setup.n_clients), setup, strategy)
    return strategy


# --- In-process simulation ---------------------------------------------------------------------
def simulate(setup: Setup, attack: Attack | None = None, *, keep_messages: bool = True,
             quiet: bool = True, attempts: int = 3) -> CuriousFedAvg:
    """Run the federation in-process with ``flwr.simulation.run_simulation`` (Ray backend).

    Flower 1.42's simulation engine has one backend, Ray; it starts once per call (chapter 08
    measures it) and runs the virtual SuperNodes in one actor (:data:`CLIENT_CPUS`). Ray gives
    up when its node does not register within 30 s, which happens on an overloaded machine;
    the run is then repeated from scratch, up to ``attempts`` times, with a warning.

    Returns:
        the curious strategy, with its captures and the global weights of every round.
    """
    for attempt in range(1, check.integer("attempts", attempts, low=1) + 1):
        try:
            return _simulate_once(setup, attack, keep_messages, quiet)
        except RuntimeError as error:
            if attempt == attempts:
                if _ray_did_not_start(error):
                    raise RayStartError(f"Ray did not start in {attempts} tries (its node must register "
                                        "within 30 s); use run_local on this machine") from error
                raise
            warnings.warn(f"Flower simulation failed ({error}); starting it again", RuntimeWarning,
                          stacklevel=2)
    raise AssertionError("unreachable")


class RayStartError(RuntimeError):
    """Ray, the only backend of Flower's simulation engine, could not start on this machine."""


def _ray_did_not_start(error: BaseException | None) -> bool:
    while error is not None:
        if "timed out during startup" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _simulate_once(setup: Setup, attack: Attack | None, keep_messages: bool, quiet: bool) -> CuriousFedAvg:
    from flwr.simulation import run_simulation

    strategy = CuriousFedAvg(setup, attack, keep_messages=keep_messages)
    app = ServerApp()

    @app.main()
    def _run(grid: Grid, context: Context) -> None:
        _serve(grid, setup, strategy)

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a Ray FutureWarning
    with _quiet(quiet):
        run_simulation(server_app=app, client_app=client_app, num_supernodes=setup.n_clients,
                       backend_config={"client_resources": {"num_cpus": CLIENT_CPUS, "num_gpus": 0.0},
                                       "init_args": {"logging_level": "ERROR", "log_to_driver": False}})
    if len(strategy.history) != setup.rounds + 1:
        raise RuntimeError(f"the simulation finished {len(strategy.history) - 1} of {setup.rounds} "
                           "rounds; see Flower's log above")
    return strategy


__all__ = ["Setup", "build_model", "set_mode", "parameter_names", "shard", "test_set", "local_update",
           "client_app", "server_app", "to_message", "Capture", "CuriousFedAvg", "load_captures",
           "simulate"]
