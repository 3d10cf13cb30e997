"""The lint and type gates: ruff and mypy report nothing on the library, benchmarks and scripts.

Their settings live in pyproject.toml ([tool.ruff], [tool.mypy]), so an editor, pre-commit and
this test all apply the same rules.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["recon_lib", "benchmarks", "scripts"]


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    result = _run(sys.executable, "-m", "ruff", "check", *TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
