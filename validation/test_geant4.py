"""The default model's variants against held-out Geant4: not farther from it than their FP32 model, beyond tolerance.

Only the default model: it is trained on our Geant4 geometry (CERN's 2017 model is CLIC geometry and is compared
only with its own FP32 model, in test_paired.py).
"""

import pytest

CHECK = "geant4"
pytestmark = [pytest.mark.tf, pytest.mark.slow]


def test_not_farther_from_geant4_than_fp32(geant4_verdict):
    if geant4_verdict.judged == 0:
        pytest.skip(f"no Geant4-side check can judge this model: {'; '.join(geant4_verdict.blind)}")
    geant4_verdict.raise_if_failed()
