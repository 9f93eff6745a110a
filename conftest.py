"""Shared fixtures and options for tests, validation and benchmarks."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy BLAS threads fight TF's on 2 cores: FPD ~30x slower


def pytest_addoption(parser):
    parser.addoption("--shared", metavar="DIR", default=None,
                     help="the shared folder (CERN weights, Geant4 data); default: $CALOGAN_SHARED, else shared/ "
                          "beside this checkout. Tests that need it skip when it is absent")


def pytest_configure(config):
    """Every test (and every subprocess it starts) sees one shared folder: --shared, else $CALOGAN_SHARED, else
    the one beside the checkout pytest runs (not beside the current directory)."""
    from gan.pretrained import SHARED_ENV_VAR, shared_dir

    option = config.getoption("shared")
    if option or not os.environ.get(SHARED_ENV_VAR):
        os.environ[SHARED_ENV_VAR] = str(Path(option).resolve() if option else shared_dir(config.rootpath))


@pytest.fixture(scope="session")
def cern_weights():
    """Path of CERN's 2017 generator weights; skips when ../shared (or a cached download) is absent."""
    from gan.pretrained import find_cern_weights, shared_dir

    path = find_cern_weights()
    if path is None:
        pytest.skip(f"CERN 3DGAN weights not available (not in {shared_dir()}/models, no cached download; "
                    "--shared DIR or $CALOGAN_SHARED names the shared folder)")
    return path


@pytest.fixture(scope="session")
def g4_data_path():
    """The shared Geant4 data set; skips when ../shared is absent."""
    from gan.pretrained import shared_data_file

    path = shared_data_file()
    if not path.is_file():
        pytest.skip(f"shared Geant4 data not found at {path}")
    return path
