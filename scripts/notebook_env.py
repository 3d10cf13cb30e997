"""The one environment under which notebooks are executed, stored and compared.

Used both by ``scripts/run_notebooks.py`` (which stores outputs) and by the root
``conftest.py`` (whose settings the kernels of nbval inherit), so the two cannot drift.
"""
STORED_OUTPUT_ENV = {
    "CUDA_VISIBLE_DEVICES": "",  # stored outputs are CPU outputs, even on a GPU machine
    "OMP_NUM_THREADS": "1",  # deterministic reductions and no oversubscription under xdist
    "MKL_NUM_THREADS": "1",
    "RECON_PROFILE": "quick",
    "TQDM_DISABLE": "1",  # progress bars are for people, not for stored outputs
    "PYTHONHASHSEED": "0",
}
