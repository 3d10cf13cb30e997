"""Settings shared by every test run and every notebook kernel pytest starts.

Environment variables set here are inherited by the Jupyter kernels nbval launches, so the
notebooks run exactly as ``scripts/run_notebooks.py`` ran them when their outputs were stored.
A GPU job sets ``RECON_GPU_TESTS=1`` and runs ``pytest tests -m gpu -p no:nbval``: CUDA then
stays visible.

nbval is switched on here rather than in pyproject's ``addopts``: with ``-p no:nbval`` the
``--nbval`` flags would not parse and pytest would stop before collecting anything.
"""
import os
from pathlib import Path

from scripts.notebook_env import STORED_OUTPUT_ENV

os.environ.pop("MPLBACKEND", None)  # Agg would strip the figures nbval expects to find
settings = dict(STORED_OUTPUT_ENV)
if os.environ.get("RECON_GPU_TESTS") == "1":
    settings.pop("CUDA_VISIBLE_DEVICES")
os.environ.update(settings)


def pytest_configure(config):
    """Compare notebooks against their stored outputs whenever the nbval plugin is loaded
    (as ``--nbval --nbval-sanitize-with tests/sanitize.cfg --nbval-current-env`` would)."""
    if not config.pluginmanager.hasplugin("nbval") or config.option.nbval_lax:
        return
    config.option.nbval = True
    config.option.nbval_current_env = True
    if config.option.nbval_sanitize_with is None:
        config.option.nbval_sanitize_with = str(Path(__file__).parent / "tests" / "sanitize.cfg")
