"""TensorFlow Lite variants on a seeded random generator: FP32 API, accuracy, round trip, op coverage, batching."""

import numpy as np
import pytest

from gan import model
from quant import registry
from quant.base import Variant, VariantError, write_variant_file
from quant.calibration import make_calibration
from quant.tflite import MODEL_FILE, interpreter_class

pytestmark = [
    pytest.mark.tf,
    # TF warns on every int8 conversion without input statistics; our input and output stay float32
    pytest.mark.filterwarnings("ignore:Statistics for quantized inputs were expected:UserWarning"),
]

NAMES = ("tflite-dynamic", "tflite-fp16", "tflite-int8")
ENERGY_GEV = np.array([10.0, 100.0, 250.0, 500.0], np.float32)
# Measured on this seeded generator and these 4 showers: tflite-dynamic relative L2 1.1e-2, shower energy
# within 1.1e-3; tflite-fp16 7.3e-4 and 4.2e-4. Bounds are about 3x that.
TOLERANCE = {"tflite-dynamic": (0.03, 0.003), "tflite-fp16": (0.002, 0.0015)}  # (relative L2, energy ratio - 1)


@pytest.fixture(scope="module")
def generator():
    import keras

    keras.utils.set_random_seed(0)
    return model.build_generator()


@pytest.fixture(scope="module")
def variants(generator):
    calibration = make_calibration(16, seed=0)
    return {name: registry.build(name, generator, calibration) for name in NAMES}


@pytest.fixture(scope="module")
def inputs():
    return model.sample_latent(len(ENERGY_GEV), seed=1), ENERGY_GEV


@pytest.fixture(scope="module")
def fp32(generator, inputs):
    return model.generate(generator, *inputs)


@pytest.fixture(scope="module")
def showers(variants, inputs):
    return {name: variant.generate(*inputs) for name, variant in variants.items()}


@pytest.fixture(scope="module")
def saved(variants, tmp_path_factory):
    return {name: variant.save(tmp_path_factory.mktemp(name)) for name, variant in variants.items()}


def energy(showers):
    return showers.sum(axis=(1, 2, 3))


@pytest.mark.parametrize("name", NAMES)
def test_variant_keeps_the_fp32_api(name, variants, showers, fp32, generator):
    variant, out = variants[name], showers[name]
    assert name in registry.names() and isinstance(variant, Variant) and variant.name == name
    assert out.shape == (len(ENERGY_GEV), 25, 25, 25) and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.all(out >= 0)
    assert np.all((energy(out) > 0.5 * energy(fp32)) & (energy(out) < 2 * energy(fp32)))  # GeV, like FP32
    assert 0 < variant.size_bytes() < 0.55 * 4 * generator.count_params()  # weights shrunk to 8 or 16 bits
    assert variant.generate(np.zeros((0, model.LATENT_SIZE)), np.zeros(0)).shape == (0, 25, 25, 25)


@pytest.mark.parametrize("name", sorted(TOLERANCE))
def test_dynamic_and_fp16_are_close_to_fp32(name, showers, fp32):
    rel_l2, energy_dev = TOLERANCE[name]
    out = showers[name]
    assert np.linalg.norm(out - fp32) / np.linalg.norm(fp32) < rel_l2
    np.testing.assert_allclose(energy(out), energy(fp32), rtol=energy_dev)


@pytest.mark.parametrize("name", NAMES)
def test_size_is_the_saved_flatbuffer(name, variants, saved):
    """(save/load round trip: tests/test_variant_contract.py)"""
    assert (saved[name] / MODEL_FILE).stat().st_size == variants[name].size_bytes()


def rows(report, prefix):
    return [row for row in report.rows if row.op.startswith(prefix)]


def test_int8_runs_dense_in_int8_and_conv3d_in_float(variants):
    report = variants["tflite-int8"].op_report()
    assert [(r.op, r.precision) for r in rows(report, "FULLY_CONNECTED")] == [("FULLY_CONNECTED (dense_1)", "int8")]
    conv = rows(report, "CONV_3D")
    assert [r.op for r in conv] == [f"CONV_3D (conv3d_{i})" for i in (1, 2, 3, 4)]
    assert all(r.precision == "fp32" and "no int8 kernel" in r.note for r in conv)
    assert any("CONV_3D has no int8 kernel in TFLite: runs in float" in note for note in report.notes)
    assert report.count("int8") > report.count("fp32") and "interpreter" in report.source


@pytest.mark.parametrize(("name", "dense_note", "conv_note"), [
    ("tflite-dynamic", "int8 weights, float activations", "fp32 weights"),
    ("tflite-fp16", "fp16 weights, dequantized to fp32", "fp16 weights, dequantized to fp32"),
])
def test_weight_only_variants_compute_in_float(name, dense_note, conv_note, variants):
    report = variants[name].op_report()
    assert report.count("int8") == 0 and report.count("fp32") == len(report.rows)
    assert rows(report, "FULLY_CONNECTED")[0].note == dense_note
    assert all(r.note == conv_note for r in rows(report, "CONV_3D"))


@pytest.mark.parametrize("name", NAMES)
def test_tflite_cannot_run_a_batch_of_128_but_recovers(name, saved, showers, inputs):
    """The known TFLite limit: conv3d_2's im2col buffer passes 2**31 elements. It fails before allocating it, at
    allocate_tensors, or at invoke for tflite-fp16 (its CONV_3D weights are dequantized at run time)."""
    interpreter = interpreter_class()(model_content=(saved[name] / MODEL_FILE).read_bytes())
    index = interpreter.get_input_details()[0]["index"]

    def run(x):
        interpreter.resize_tensor_input(index, list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[..., 0]

    with pytest.raises(RuntimeError, match=r"im2col elements \(3220439040\) exceed the 32-bit integer limit"):
        run(np.zeros((128, model.LATENT_SIZE), np.float32))
    x = model.latent_input(inputs[0][:2], inputs[1][:2])
    np.testing.assert_allclose(run(x), showers[name][:2], rtol=1e-5, atol=1e-6)  # same interpreter, smaller batch


@pytest.mark.parametrize("failing", ["allocate_tensors", "invoke"])
def test_batch_that_fails_falls_back_to_a_smaller_one(failing, saved, showers, inputs, monkeypatch):
    variant = registry.load(saved["tflite-fp16"])
    variant.batch_size = 4
    interpreter, tried = variant._interpreter, []
    original = getattr(interpreter, failing)

    def fail_above_two():
        tried.append(n := interpreter.get_input_details()[0]["shape"][0])
        if n > 2:
            raise RuntimeError(f"simulated: batch {n} failed to prepare")
        return original()

    monkeypatch.setattr(interpreter, failing, fail_above_two)
    for _ in range(2):
        np.testing.assert_allclose(variant.generate(*inputs), showers["tflite-fp16"], rtol=1e-5, atol=1e-6)
    assert variant.batch_size == 2 and tried[0] == 4 and tried.count(4) == 1  # remembered, not retried
    assert any("cannot prepare a batch of 4" in note and "batches of 2" in note
               for note in variant.op_report().notes)


class RawCalibration:
    """Calibration inputs without Calibration's own checks, as a duck-typed caller might pass them."""

    def __init__(self, inputs):
        self.inputs = inputs

    def batches(self, batch_size=32):
        return iter([self.inputs[i:i + batch_size] for i in range(0, len(self.inputs), batch_size)])


@pytest.mark.parametrize(("calibration", "message"), [
    (None, "needs calibration data"),
    (RawCalibration(np.zeros((0, model.LATENT_SIZE), np.float32)), "empty"),
    (RawCalibration(np.zeros((4, 100), np.float32)), r"shape \(N, 200\)"),
    (RawCalibration(np.full((4, model.LATENT_SIZE), np.nan, np.float32)), "NaN or inf"),
])
def test_int8_rejects_bad_calibration_data(generator, calibration, message):
    with pytest.raises(VariantError, match=message):
        registry.build("tflite-int8", generator, calibration)


def test_load_rejects_missing_or_corrupt_flatbuffer(tmp_path):
    write_variant_file(tmp_path, "tflite-fp16", model=MODEL_FILE)
    with pytest.raises(VariantError, match=f"{MODEL_FILE} is missing"):
        registry.load(tmp_path)
    (tmp_path / MODEL_FILE).write_bytes(b"not a flatbuffer" * 8)
    with pytest.raises(VariantError, match="not a readable TFLite model"):
        registry.load(tmp_path)


def test_large_batches_run_as_bounded_ones_and_say_so(saved, showers, inputs):
    """Issue #14: im2col memory grows with the batch (~0.2 GB per shower); a larger request runs in pieces."""
    from quant.tflite import BATCH_SIZE, IM2COL_BUDGET_BYTES, IM2COL_BYTES_PER_SHOWER

    assert BATCH_SIZE * IM2COL_BYTES_PER_SHOWER <= IM2COL_BUDGET_BYTES
    variant = registry.load(saved["tflite-fp16"])
    variant.batch_size = 3
    assert not any("at most" in note for note in variant.op_report().notes)
    np.testing.assert_allclose(variant.generate(*inputs), showers["tflite-fp16"], rtol=1e-5, atol=1e-6)
    assert any(f"batches of at most 3 showers (a batch of {len(inputs[0])} as several)" in note
               for note in variant.op_report().notes)
