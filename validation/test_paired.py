"""Every variant against its own FP32 model, event by event (same z, same energies): shifts per energy bin."""

import pytest

CHECK = "paired"
pytestmark = [pytest.mark.tf, pytest.mark.slow]


def test_paired_shifts_within_tolerance(paired_verdict):
    paired_verdict.raise_if_failed()
