"""Fixtures shared by the unit tests."""
import hashlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_collection_modifyitems(config, items):
    """Skip GPU-marked tests where no CUDA device is present (CI never has one)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# --- a real HTTP server on 127.0.0.1 for the download path (tests/test_datasets.py, test_archives.py)
class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server:
    """A static file server on 127.0.0.1 (random free port) running in a thread."""

    def __init__(self, folder: Path):
        handler = partial(QuietHandler, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.folder = folder
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    running = Server(served)
    yield running
    running.stop()


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def publish(server, monkeypatch):
    """``publish(name, files)``: serve ``files`` and point REMOTES[name] at them with their
    true checksums (``key_of`` names the served file of each key)."""
    from recon_lib import sources

    def publish(name, files: dict[str, bytes], algorithm="sha256", key_of=None):
        remotes = {}
        for key, payload in files.items():
            filename = key_of(key) if key_of else key
            (server.folder / filename).write_bytes(payload)
            digest = hashlib.new(algorithm, payload).hexdigest()
            remotes[key] = sources.Remote(f"{server.url}/{filename}", f"{algorithm}:{digest}")
        monkeypatch.setitem(sources.REMOTES, name, remotes)
    return publish
