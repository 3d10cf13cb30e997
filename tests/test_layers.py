"""The library's modules import one way: each only from lower layers (read from the source)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import recon_lib

PACKAGE = Path(recon_lib.__file__).parent
# The layer order, lowest first; the package docstring lists the same (checked below). A module
# may import modules of strictly lower layers only. Subpackages count as one unit.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_validate", "archives", "errors", "kinds", "runtime"),
    ("activations", "cgls", "defence_theory", "fl", "geometry", "head", "lbfgs", "metrics", "models",
     "presets", "sources", "span", "symbolic"),
    ("analytic", "conv", "datasets", "defences", "matching", "plot", "verify"),
    ("benchmark_tables", "cnn", "conditions", "distortions", "flower", "imprint", "labels"),
    ("deployment", "newton"),
    ("optimize",),
    ("benchmark_methods", "privacy_utility", "victims"),
    ("benchmark_figures",),
    ("benchmark",),
    ("course", "grading", "widgets"),
)
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}


def units() -> dict[str, list[Path]]:
    """Every module of the package (a subpackage is one unit with all its files)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        found.setdefault(parts[0], []).append(path)
    return found


def imported_units(path: Path) -> set[str]:
    """The recon_lib units a file imports anywhere (module level or inside functions)."""
    inner = path.relative_to(PACKAGE).parts[:-1]  # the subpackage the file lives in, if any
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[1] for alias in node.names
                      if alias.name.startswith("recon_lib.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "recon_lib":
                    continue
                names |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
                continue
            base = inner[:max(len(inner) - node.level + 1, 0)]  # package the dots point to
            if base:  # inside the file's own subpackage: internal to the unit
                continue
            module = (node.module or "").split(".")[0]
            names |= {module} if module else {alias.name for alias in node.names}
    return names


def test_every_module_has_a_layer():
    missing = sorted(set(units()) - set(LAYER))
    assert not missing, f"add {missing} to LAYERS here and in recon_lib's docstring"


@pytest.mark.parametrize("unit", sorted(LAYER))
def test_imports_go_down_only(unit):
    files = units().get(unit)
    assert files, f"{unit} is in LAYERS but not in the package"
    for path in files:
        for other in imported_units(path):
            assert other in LAYER, f"{path.name} imports {other}, which has no layer"
            assert LAYER[other] < LAYER[unit], (
                f"{path.relative_to(PACKAGE)} (layer {LAYER[unit]}) imports {other} "
                f"(layer {LAYER[other]}): a module may import lower layers only")


def test_the_docstring_states_the_same_layers():
    text = re.sub(r",\n\s+", ", ", recon_lib.__doc__)  # a layer's list may wrap onto a second line
    stated = re.findall(r"^\s*layer (\d+): (.+)$", text, flags=re.MULTILINE)
    assert [(int(i), tuple(n.strip() for n in names.split(","))) for i, names in stated] == \
        list(enumerate(LAYERS))


def test_the_checker_sees_relative_absolute_and_local_imports(tmp_path, monkeypatch):
    fake = tmp_path / "recon_lib"
    (fake / "widgets").mkdir(parents=True)
    source = ("from . import conv, models\nfrom .analytic import reconstruct\nimport recon_lib.cnn\n"
              "def f():\n    from .. import labels\n    from . import sibling\n")
    (fake / "widgets" / "x.py").write_text(source)
    (fake / "top.py").write_text("from . import conv\nfrom .span import batch_span\n"
                                 "def g():\n    from recon_lib import optimize\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert imported_units(fake / "widgets" / "x.py") == {"cnn", "labels"}
    assert imported_units(fake / "top.py") == {"conv", "span", "optimize"}
