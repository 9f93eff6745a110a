"""No import runs back up: every module's imports (top-level and inside functions, read with ast) respect the
layers gan < verdict < quant < study, production < report, validation, benchmarks; the physics and the verdict
import no TensorFlow."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# package -> the project packages it may import (itself included); a package not listed here is not ours
MAY_IMPORT = {
    "gan": {"gan"},
    "verdict": {"gan", "verdict"},
    "quant": {"gan", "verdict", "quant"},
    "study": {"gan", "verdict", "quant", "study"},
    "production": {"gan", "verdict", "quant", "study", "production"},
    "report": {"gan", "verdict", "quant", "study", "report"},
    "validation": {"gan", "verdict", "quant", "study", "validation"},
    "benchmarks": {"gan", "verdict", "quant", "study", "benchmarks"},
}
TENSORFLOW = {"tensorflow", "keras", "tf_keras", "openvino", "nncf", "neural_compressor", "ai_edge_litert"}
# numpy-only modules: the physics and the machine facts at the bottom, and the whole verdict package
NO_TENSORFLOW = ["gan/physics.py", "gan/metrics.py", "gan/features.py", "gan/distances.py", "gan/paired.py",
                 "gan/agreement.py", "gan/data.py", "gan/outputs.py", "gan/machine.py", "gan/pretrained.py",
                 *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "verdict").glob("*.py"))]


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute module names ``path`` imports anywhere in it (relative imports: its package's name)."""
    package = path.relative_to(root).parts[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(".".join(filter(None, (package, node.module))) if node.level else node.module)
    return found


def modules_of(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if ".venv" not in p.parts)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_no_import_runs_back_up(package):
    wrong = [f"{path.relative_to(ROOT)} imports {name}" for path in modules_of(package)
             for name in sorted(imported_modules(path))
             if name.split(".")[0] in MAY_IMPORT and name.split(".")[0] not in MAY_IMPORT[package]]
    assert not wrong, f"{package} may import only {sorted(MAY_IMPORT[package])}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("module", NO_TENSORFLOW)
def test_physics_and_verdict_import_no_tensorflow(module):
    heavy = sorted(n for n in imported_modules(ROOT / module) if n.split(".")[0] in TENSORFLOW)
    assert not heavy, f"{module} imports {heavy}"


def test_importing_the_physics_and_the_verdict_loads_no_tensorflow():
    """The same, transitively: a fresh interpreter imports every numpy-only module and nothing heavy comes along."""
    import subprocess
    import sys

    modules = [m.removesuffix(".py").replace("/", ".").removesuffix(".__init__") for m in NO_TENSORFLOW]
    code = f"import sys\nfor m in {modules!r}: __import__(m)\n" \
           f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(TENSORFLOW | {'quant', 'study'})!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_every_package_is_placed_in_a_layer():
    """A new top-level package must say where it sits (and what it may import)."""
    import tomllib

    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert set(shipped) <= set(MAY_IMPORT)
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages <= set(MAY_IMPORT), f"unplaced: {sorted(packages - set(MAY_IMPORT))}"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "gan"
    pkg.mkdir()
    (pkg / "x.py").write_text("import numpy\ndef f():\n    from quant import registry\n    from . import model\n"
                              "    from .data import read\n")
    assert imported_modules(pkg / "x.py", tmp_path) == {"numpy", "quant", "gan", "gan.data"}
