"""Settings shared by every test run and every notebook kernel pytest starts.

Environment variables set here are inherited by the Jupyter kernels nbval launches, so the
notebooks run exactly as ``scripts/run_notebooks.py`` ran them when their outputs were stored.
A GPU job sets ``RECON_GPU_TESTS=1`` and runs ``pytest tests -m gpu``: CUDA then stays visible.
"""
import os

from scripts.notebook_env import STORED_OUTPUT_ENV

os.environ.pop("MPLBACKEND", None)  # Agg would strip the figures nbval expects to find
settings = dict(STORED_OUTPUT_ENV)
if os.environ.get("RECON_GPU_TESTS") == "1":
    settings.pop("CUDA_VISIBLE_DEVICES")
os.environ.update(settings)
