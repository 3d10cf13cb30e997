"""Re-execute notebooks in place under the settings CI compares against.

    python scripts/run_notebooks.py                 # every notebook in notebooks/ and solutions/
    python scripts/run_notebooks.py notebooks/01_one_hidden_node.ipynb

Outputs (figures included) are stored in the files, so a reader sees them before running
anything, and nbval compares a fresh run against exactly these outputs. Widget state is not
stored (a widget needs a live kernel anyway; its text fallback stays), figures are drawn at the
dpi set in ``notebooks/matplotlibrc`` and stored as 128-colour PNGs: ``notebooks/`` stays under
2 MB (nbval does not compare images).
"""
from __future__ import annotations

import base64
import io
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.notebook_env import STORED_OUTPUT_ENV  # noqa: E402

DEFAULT_FOLDERS = ("notebooks", "solutions")


def slim_figures(notebook: nbformat.NotebookNode) -> None:
    """Re-encode each stored PNG figure with a 128-colour palette when that is smaller (about 3×)."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data:
                continue
            original = base64.b64decode(data["image/png"])
            buffer = io.BytesIO()
            Image.open(io.BytesIO(original)).convert("RGB").quantize(128).save(buffer, "PNG", optimize=True)
            if buffer.tell() < len(original):
                data["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")


def execute(path: Path, timeout: int = 600) -> float:
    """Run one notebook top to bottom in its own folder; store outputs; return seconds."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    notebook.metadata.pop("widgets", None)
    slim_figures(notebook)
    nbformat.write(notebook, path)
    return seconds


def main(paths: list[str]) -> None:
    os.environ.pop("MPLBACKEND", None)
    os.environ.update(STORED_OUTPUT_ENV)
    targets = [Path(p) for p in paths] or sorted(
        p for folder in DEFAULT_FOLDERS for p in (ROOT / folder).glob("*.ipynb"))
    for path in targets:
        print(f"{path}: {execute(path.resolve()):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
