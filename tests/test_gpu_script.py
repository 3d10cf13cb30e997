"""benchmarks/gpu.sh: a dry run on CPU-only machines; every benchmark takes --device; the GPU
job's own pytest command parses (nbval is switched on in conftest.py, not in addopts)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"
BENCHMARKS = sorted(p for p in (ROOT / "benchmarks").glob("*.py")
                    if p.stem not in {"__init__", "common", "dlg_reference"})
# Benchmarks merged from other branches that do not take --device yet (issue 13, section 3): each
# is an expected failure below, strict, so adding --device to one makes this list shrink.
NO_DEVICE_YET: set[str] = set()


def _cpu_only_env() -> dict:
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}


def test_gpu_script_is_a_dry_run_without_cuda():
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=_cpu_only_env(),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dry run")
    assert "pytest tests -m gpu -p no:nbval" in done.stdout
    named = set(re.findall(r"benchmarks/(\w+)\.py --device cuda", done.stdout))
    assert named == {p.stem for p in BENCHMARKS} - NO_DEVICE_YET   # every benchmark that can, on CUDA


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason="no --device yet")) if p.stem in NO_DEVICE_YET
    else p for p in BENCHMARKS], ids=lambda p: p.stem)
def test_every_benchmark_takes_device(path):
    source = path.read_text()
    assert "add_device_argument(parser)" in source or '"--device"' in source


def test_pytest_without_nbval_parses_its_options():
    command = [sys.executable, "-m", "pytest", "-p", "no:nbval", "-n", "0", "--collect-only", "-q",
               "tests/test_runtime.py"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300, env=_cpu_only_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_quick_is_the_default" in done.stdout


@pytest.mark.parametrize("stem", ["defence_accuracy", "federation", "imprint", "victims", "table", "notebooks"])
def test_cuda_asked_without_cuda_is_a_clear_error(stem):
    path = ROOT / "benchmarks" / f"{stem}.py"
    done = subprocess.run([sys.executable, str(path), "--device", "cuda"], capture_output=True, text=True,
                          cwd=ROOT, env=_cpu_only_env(), timeout=300)
    assert done.returncode != 0
    assert "--device cuda: PyTorch sees no CUDA device" in done.stderr
