"""Chapter 08: Flower's deployment engine on one machine — a SuperLink and SuperNodes as processes.

:func:`local_federation` starts ``flower-superlink`` and N ``flower-supernode`` processes on
127.0.0.1 in insecure mode, on free ports, with a private Flower home (``$FLWR_HOME``) whose
``config.toml`` names the SuperLink connection; :meth:`Federation.run` launches the course's
Flower app (``flower_app/`` in the repository, components in :mod:`recon_lib.flower`) the way
Flower documents it, ``flwr run <app> <connection> --stream``, and returns what the curious
server captured. Every process — and every process they started — is stopped on exit, even
when the run fails. On real hosts the same app runs unchanged: start the SuperLink on one
machine and a SuperNode on each client machine with ``--superlink <host>:<port>`` (README).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from . import _validate as check
from .flower import Capture, Setup, State, load_captures

APP_DIR = Path(__file__).resolve().parent.parent / "flower_app"
CONNECTION = "local-deployment"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _executable(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent),
                                                     os.environ.get("PATH", "")]))
    if found is None:
        raise FileNotFoundError(f"{name} not found: install Flower with pip install 'flwr[simulation]'")
    return found


@dataclass
class Federation:
    """A running SuperLink and its SuperNodes (see :func:`local_federation`)."""

    home: Path
    address: str
    n_nodes: int
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: Path = Path()
    env: dict[str, str] = field(default_factory=dict)

    def pids(self) -> set[int]:
        """Every process of the federation and all their descendants, alive now."""
        found: set[int] = set()
        for process in self.processes:
            try:
                parent = psutil.Process(process.pid)
                found |= {parent.pid, *(child.pid for child in parent.children(recursive=True))}
            except psutil.NoSuchProcess:
                continue
        return found

    def run(self, setup: Setup, app: Path = APP_DIR, timeout: float = 300.0
            ) -> tuple[Setup, list[Capture], dict[int, State]]:
        """``flwr run`` the course's app on this federation; returns what the server captured.

        Raises:
            ValueError: ``setup.n_clients`` differs from the number of SuperNodes.
            RuntimeError: the run failed or captured nothing (its log is in the message).
            subprocess.TimeoutExpired: it did not finish within ``timeout`` seconds.
        """
        if setup.n_clients != self.n_nodes:
            raise ValueError(f"setup.n_clients={setup.n_clients} but the federation has {self.n_nodes} "
                             "SuperNodes")
        capture = self.home / f"captures-{time.time_ns()}.pt"
        overrides = {**setup.to_config(), "capture-file": str(capture)}
        command = [_executable("flwr"), "run", str(app), CONNECTION, "--stream",
                   "--run-config", " ".join(f"{key}={_toml(value)}" for key, value in overrides.items())]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)
        if done.returncode != 0 or not capture.exists():
            raise RuntimeError(f"flwr run failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                               f"{done.stderr[-3000:]}")
        result = load_captures(capture)
        if len(result[2]) != setup.rounds + 1:
            raise RuntimeError(f"the run stored {len(result[2]) - 1} of {setup.rounds} rounds:\n"
                               f"{done.stdout[-3000:]}")
        return result


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _start(command: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:  # the child keeps its own descriptor
        return subprocess.Popen(command, env=dict(env), stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_listening(port: int, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.stem} exited with {process.returncode}:\n"
                               f"{log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s:\n{log.read_text()[-2000:]}")


def stop(processes: list[subprocess.Popen], grace: float = 10.0) -> None:
    """Terminate processes, their process groups and all their descendants; kill what remains."""
    victims: dict[int, psutil.Process] = {}
    for process in processes:
        try:
            parent = psutil.Process(process.pid)
            victims.update({p.pid: p for p in [parent, *parent.children(recursive=True)]})
        except psutil.NoSuchProcess:
            pass
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    for p in victims.values():
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(victims.values()), timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)
    for process in processes:
        process.wait(timeout=grace)  # reap our own children (no zombies left)


@contextmanager
def local_federation(n_nodes: int = 2, *, startup_timeout: float = 120.0,
                     keep_home: Path | None = None) -> Iterator[Federation]:
    """A SuperLink and ``n_nodes`` SuperNodes on 127.0.0.1 (insecure, free ports), stopped on exit.

    SuperNode k gets ``--node-config "partition-id=k num-partitions=n_nodes"``, which the
    client app reads to pick its shard. Runtime dependency installation is disabled: the
    processes use this Python environment (recon_lib must be importable in it).

    Args:
        n_nodes: SuperNodes to start (≥ 1).
        startup_timeout: seconds to wait for each process to listen.
        keep_home: a folder for the Flower home and logs (default: a temporary one, deleted).
    """
    n_nodes = check.integer("n_nodes", n_nodes, low=1)
    made: str | None = None
    if keep_home is None:
        made = tempfile.mkdtemp(prefix="recon-flower-")
        home = Path(made)
    else:
        home = Path(keep_home)
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    federation = Federation(home, f"127.0.0.1:{port}", n_nodes, logs=home)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
        f'address = "{federation.address}"\ninsecure = true\n')
    root = str(Path(__file__).resolve().parent.parent)
    federation.env = {**os.environ, "FLWR_HOME": str(home),
                      "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    try:
        link = _start([_executable("flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port",
                       str(port), "--disable-runtime-dependency-installation"], federation.env,
                      home / "superlink.log")
        federation.processes.append(link)
        _wait_listening(port, link, home / "superlink.log", startup_timeout)
        for k in range(n_nodes):
            node_port = free_port()
            node = _start([_executable("flower-supernode"), "--insecure", "--superlink", federation.address,
                           "--port", str(node_port), "--node-config",
                           f"partition-id={k} num-partitions={n_nodes}"], federation.env,
                          home / f"supernode-{k}.log")
            federation.processes.append(node)
            _wait_listening(node_port, node, home / f"supernode-{k}.log", startup_timeout)
        yield federation
    finally:
        stop(federation.processes)
        if made:
            shutil.rmtree(made, ignore_errors=True)
