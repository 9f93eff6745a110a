"""The code passes ruff with the project's stricter rule families ([tool.ruff.lint] in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff() -> str:
    local = Path(sys.executable).with_name("ruff")
    found = str(local) if local.is_file() else shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (it comes with the [test] extra)")
    return found


def test_ruff_passes():
    result = subprocess.run([_ruff(), "check", "--no-cache", str(ROOT)], capture_output=True, text=True,
                            check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
