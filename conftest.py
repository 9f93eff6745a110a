"""Shared fixtures and options for tests, validation and benchmarks."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy BLAS threads fight TF's on 2 cores: FPD ~30x slower


@pytest.fixture(scope="session")
def cern_weights():
    """Path of CERN's 2017 generator weights; skips when ../shared (or a cached download) is absent."""
    from gan.pretrained import find_cern_weights

    path = find_cern_weights()
    if path is None:
        pytest.skip("CERN 3DGAN weights not available (no ../shared/models, no cached download)")
    return path


@pytest.fixture(scope="session")
def g4_data_path():
    """The shared Geant4 data set; skips when ../shared is absent."""
    from gan.pretrained import SHARED_DIR

    path = SHARED_DIR / "data" / "g4_electrons_10-250GeV.h5"
    if not path.is_file():
        pytest.skip(f"shared Geant4 data not found at {path}")
    return path
