"""The package metadata agrees with what a Space installs, and its console command points at the CLI."""

import importlib
import re
import tomllib

from conftest import ROOT


def requirement_lines(path):
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith(("#", "-"))]


def test_pyproject_dependencies_are_requirements_txt():
    def same(entry: str) -> str:
        return re.sub(r"[\s'\"]", "", entry)

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(map(same, project["dependencies"])) == sorted(map(same, requirement_lines(ROOT / "requirements.txt")))
    assert project["name"] != "lipsync"  # taken on the package index by another project


def test_console_command_is_the_cli():
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["lipsync"]
    module, function = target.split(":")
    assert getattr(importlib.import_module(module), function) is importlib.import_module("lipsync.__main__").main
