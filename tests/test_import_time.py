"""`import recon_lib` stays light: heavy libraries load only in the modules that need them."""
import json
import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "sympy", "skimage", "scipy", "opacus")


def loaded_after(code: str) -> list[str]:
    """Heavy top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    script = (f"import sys\n{code}\nimport json\n"
              "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return [name for name in HEAVY if name in json.loads(out.splitlines()[-1])]


def test_importing_the_package_loads_no_heavy_library():
    assert loaded_after("import recon_lib") == []


@pytest.mark.parametrize("module", ["analytic", "cnn", "conditions", "defences", "optimize", "newton"])
def test_the_attacks_load_no_plotting_or_symbolic_library(module):
    assert loaded_after(f"import recon_lib as rl\nrl.{module}") == []


def test_the_checker_sees_a_heavy_import():
    assert "matplotlib" in loaded_after("import recon_lib as rl\nrl.plot")


def test_submodules_still_resolve_as_attributes_and_imports():
    code = ("import recon_lib as rl\nfrom recon_lib import benchmark as bm\n"
            "assert rl.analytic.invert_cnn is rl.cnn.invert_cnn and bm.plot_psnr\n"
            "assert 'analytic' in dir(rl) and rl.ReconstructionWarning\n"
            "try:\n    rl.nope\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)")
    subprocess.run([sys.executable, "-c", code], check=True)
