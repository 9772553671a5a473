"""Scripts under benchmarks/ and experiments/ import, and use only public segmentlab names."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Packages of optional extras (pyproject.toml) that a script may need.
OPTIONAL = {"pymc_marketing", "implicit"}
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("experiments/**/*.py")])


def test_there_are_scripts():
    assert any(p.parent.name == "benchmarks" for p in SCRIPTS)
    assert any("experiments" in p.parts for p in SCRIPTS)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_script_imports(path):
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # runs the imports and definitions, not main()
    except ModuleNotFoundError as e:
        if e.name not in OPTIONAL:
            raise
        pytest.skip(f"{path.name} needs the optional package {e.name}")
    assert hasattr(module, "main"), f"{path.name} has no main()"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_script_starts_with_help(path):
    """A fresh process: optional packages and the data are needed only by a real run."""
    done = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
    assert "usage:" in done.stdout


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_script_uses_public_names_only(path):
    tree = ast.parse(path.read_text())
    private = [f"{node.module}.{alias.name}" for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segmentlab")
               for alias in node.names if alias.name.startswith("_")]
    private += [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in ("segmentlab", "cli", "tuning")]
    assert not private, f"{path.name} reaches into private names: {private}"
