"""openvino-int8-tuned: NNCF accuracy control on the physics objective; the validation items and determinism."""

import numpy as np
import pytest

from gan.model import latent_input
from quant import registry
from quant.calibration import make_calibration
from quant.objective import TUNING_SCORE
from quant.openvino_tuned import ITEMS, MAX_DROP, PhysicsValidation

BASE = np.random.default_rng(0).gamma(2.0, 1.0, (25, 25, 25)).astype(np.float32)


def fake_model(x):
    """A deterministic stand-in generator: each shower a fixed pattern scaled by its input's norm (GeV)."""
    return [1e-3 * np.linalg.norm(x, axis=1)[:, None, None, None] * BASE]


def fake_generate(z, energy):
    return fake_model(latent_input(z, energy))[0]


@pytest.fixture(scope="module")
def validation():
    return PhysicsValidation(fake_generate, (10.0, 250.0), showers=64, seed=1)


def test_items_partition_the_inputs_and_span_the_energy_range(validation):
    assert len(validation.items) == ITEMS
    indices = np.concatenate(validation.indices)
    assert sorted(indices) == list(range(64))
    for idx in validation.indices:  # every item has showers in each of the objective's energy bins
        assert len(np.unique(np.digitize(validation.objective.energy[idx], validation.objective.edges[1:-1]))) == 4
    k, x = validation.items[2]
    np.testing.assert_array_equal(x, latent_input(validation.objective.z, validation.objective.energy)[
        validation.indices[2]])


def test_validation_fn_scores_any_subset_of_items(validation):
    score, per_item = validation(fake_model, validation.items)
    assert score == 1.0 and per_item == [1.0] * ITEMS
    score, per_item = validation(lambda x: [1.3 * fake_model(x)[0]], validation.items[1:3])
    assert score < 0.5 and len(per_item) == 2 and max(per_item) < 0.5
    assert validation.validations == 2


def test_too_few_showers_is_a_variant_error():
    from quant.base import VariantError

    with pytest.raises(VariantError, match="at least 16 validation showers"):
        PhysicsValidation(fake_generate, (10.0, 250.0), showers=8)


@pytest.fixture(scope="module")
def tuned_pair(seeded_generator):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from quant.openvino_tuned import build_tuned

    calibration = make_calibration(16, seed=0)
    return [build_tuned(seeded_generator, calibration, showers=32, seed=7) for _ in range(2)]


@pytest.mark.tf
@pytest.mark.slow
def test_tuning_is_deterministic_and_reports_its_fallbacks(tuned_pair):
    first, second = tuned_pair
    assert first.info["fallback_layers"] == second.info["fallback_layers"]
    assert first.info["tuning"]["trials"] == second.info["tuning"]["trials"]
    assert first.info["tuning"]["final_score"] == second.info["tuning"]["final_score"]
    report = first.op_report()
    rows = {row.op: row.precision for row in report.rows}
    for layer in ("dense_1", "conv3d_1", "conv3d_2", "conv3d_3", "conv3d_4"):
        assert (rows[layer] == "fp32") == (layer in first.info["fallback_layers"]), layer
    assert any(n.startswith(f"accuracy control: physics score drop <= {MAX_DROP:g}") for n in report.notes)
    assert any(n.startswith("tuning: ") for n in report.notes)
    if first.info["fallback_layers"]:
        assert first.info["tuning"]["trials"], "layers fell back, so NNCF must have logged reverted groups"
    assert (first.info["tuning"]["final_score"] >= TUNING_SCORE) or len(first.info["fallback_layers"]) == 7


@pytest.mark.tf
@pytest.mark.slow
def test_saved_tuned_variant_keeps_its_tuning_record(tuned_pair, tmp_path):
    """(save/load showers: tests/test_variant_contract.py)"""
    variant = tuned_pair[0]
    loaded = registry.load(variant.save(tmp_path / "tuned"))
    assert loaded.info == variant.info and loaded.op_report().notes == variant.op_report().notes
