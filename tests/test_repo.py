"""The repository keeps its promises: CI runs the README's command, conda delegates to pip."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [block.strip() for block in blocks if "python3 -m venv" in block]


def test_readme_quick_start_has_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    assert all("torch==2.13.0" in command for command in commands)
    assert "jupyter lab" in commands[0] and commands[1].endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_environment_yml_delegates_to_pyproject():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    dependencies = environment["dependencies"]
    assert any(str(d).startswith("python=3.11") for d in dependencies)
    assert "pip" in dependencies
    pip_section = next(d["pip"] for d in dependencies if isinstance(d, dict))
    assert pip_section == ["torch==2.13.0", "-e .[dev]"]


def test_pyproject_declares_no_torchvision_and_the_dev_tools():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=\[ ]", d)[0] for d in project["dependencies"]]
    assert "torchvision" not in names and "torch" in names
    dev = [re.split(r"[<>=\[ ]", d)[0] for d in project["optional-dependencies"]["dev"]]
    assert {"pytest", "nbval", "pytest-xdist", "nbgrader", "pyyaml"} <= set(dev)
