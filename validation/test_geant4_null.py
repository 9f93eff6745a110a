"""Geant4 against Geant4 passes the Geant4-side checks at the stated rate: fresh energy-matched, disjoint Geant4
subsets stand in for the reference, for FP32 and for the variant (needs the shared Geant4 files)."""

import numpy as np
import pytest

from verdict import geant4_events, geant4_null
from verdict.checks import check_geant4

pytestmark = [pytest.mark.shared, pytest.mark.slow]
RESAMPLINGS = 40  # fresh draws at the default suite's 100 reference events (~10 s)
SEED = 20261206  # not one of the table's seeds


@pytest.fixture(scope="module")
def events(g4_data_path):
    return geant4_events.load(log=lambda _: None)


def test_geant4_stand_ins_pass_at_the_stated_rate(events, settings):
    table = geant4_null.load()
    n, alpha = settings.geant4_showers, table["measure"]["alpha_suite"]
    thresholds, rng = geant4_null.thresholds(table, n), np.random.default_rng(SEED)
    failed = sum(not check_geant4(*geant4_null.resample(events, n, settings.edges("default"), rng),
                                  thresholds).ok for _ in range(RESAMPLINGS))
    # at most alpha of the draws should fail; allow the binomial 99.9% upper range of RESAMPLINGS draws
    allowed = int(alpha * RESAMPLINGS + 3.1 * np.sqrt(RESAMPLINGS * alpha * (1 - alpha)))
    assert failed <= allowed, f"Geant4 vs Geant4 failed {failed} of {RESAMPLINGS} draws (stated rate {alpha:.0%})"
