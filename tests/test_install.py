"""A non-editable install works away from the checkout: the wheel of this project, installed into a fresh
environment (its dependencies borrowed from the test's own environment, the editable install and the source tree
left out), runs ``python -m gan generate`` and a small main job (``python -m report``) from a temporary folder.

Catches a package or a data table (TOML, the embedded model) missing from the wheel, and code that finds its
files or ``../shared`` from the position of the checkout. About 1.5-2 min on 2 cores (one wheel build, two
TensorFlow start-ups)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.tf]

ROOT = Path(__file__).resolve().parent.parent
# what a source distribution would not carry: environments, caches, outputs, version control
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", ".tox", "__pycache__", "*.egg-info", "build", "dist",
                                   "training", "reports", "out", "runs", ".benchmarks", ".pytest_cache")


def _run(command, cwd, env, timeout=600) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed ({done.returncode}):\n" \
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of a fresh environment with the wheel installed, its environment variables, a work folder)."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist",
          source], tmp, os.environ)
    [wheel] = (tmp / "dist").glob("calogan_precision-*.whl")
    target = tmp / "target"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", target, wheel], tmp, os.environ)
    # a fresh environment: its site-packages lists the installed project, then this environment's packages (a
    # path line in a .pth is not itself scanned for .pth files: the editable finder of this checkout stays out)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp / "venv"], check=True)
    python = tmp / "venv" / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "calogan_test.pth").write_text(f"{target}\n{sysconfig.get_paths()['purelib']}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CALOGAN_"))}
    env |= {"CALOGAN_CACHE": str(tmp / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    work = tmp / "elsewhere"
    work.mkdir()
    return python, env, work, target


def test_the_wheel_ships_every_package_and_table(installed):
    python, env, work, target = installed
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert {"gan", "verdict", "quant", "report"} <= set(shipped)
    assert all((target / p / "__init__.py").is_file() for p in shipped)
    assert sorted(p.name for p in (target / "verdict").glob("*.toml")) == sorted(
        p.name for p in (ROOT / "verdict").glob("*.toml"))
    assert (target / "gan" / "default" / "generator.h5").is_file()
    where = _run([python, "-c", "import gan, verdict, quant, report; print(gan.__file__, verdict.__file__)"],
                 work, env).stdout
    assert str(ROOT) not in where and where.count(str(target)) == 2


def test_gan_generate_runs_from_another_folder(installed):
    python, env, work, _ = installed
    done = _run([python, "-m", "gan", "generate", "--n", "20", "--out", "gen"], work, env)
    assert (work / "gen" / "showers.h5").is_file() and (work / "gen" / "physics.png").is_file(), done.stdout


def test_the_main_job_runs_from_another_folder(installed):
    python, env, work, _ = installed
    _run([python, "-m", "report", "--models", "default", "--variants", "fp32", "--showers", "20", "--no-speed",
          "--out", "rep", "--quiet"], work, env)
    assert {"report.md", "report.html", "results.json"} <= {p.name for p in (work / "rep").iterdir()}


def test_the_check_command_is_found_through_its_entry_point(installed):
    python, env, work, _ = installed
    done = subprocess.run([python, "-m", "gan", "check", "--model", "default", "--candidate", "missing.h5"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and "missing.h5: no such file or folder" in done.stderr, done.stderr[-2000:]
