"""quant.openvino.build_mixed and int8+bf16: per-layer int8 / bf16 / fp32 on OpenVINO, checked in the runtime model."""

import numpy as np
import pytest

import quant.cpu
from quant import registry
from quant.base import VariantError, VariantUnavailable
from quant.calibration import make_calibration

pytestmark = pytest.mark.tf
CONVS = ("conv3d_1", "conv3d_2", "conv3d_3", "conv3d_4")
HAS_BF16 = quant.cpu.has_any(quant.cpu.BF16_FLAGS)
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="CPU has neither avx512_bf16 nor amx_bf16")


@pytest.fixture(scope="module")
def ov():
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from quant import openvino

    return openvino


@pytest.fixture(scope="module")
def generator(seeded_generator):
    return seeded_generator


@pytest.fixture(scope="module")
def calibration():
    return make_calibration(16, seed=0)


@pytest.fixture(scope="module")
def inputs():
    from gan import model

    return model.sample_latent(6, seed=3), np.array([10, 40, 100, 150, 200, 250], np.float32)


@pytest.fixture(scope="module")
def fp32_showers(ov, generator, inputs):
    return ov.build_fp32(generator).generate(*inputs)


@pytest.fixture(scope="module")
def mixed(ov, generator, calibration):
    """All three precisions, an explicitly assigned BatchNorm and an fp32 Dense among bf16 layers."""
    if not HAS_BF16:
        pytest.skip("CPU has neither avx512_bf16 nor amx_bf16")
    precisions = {"dense_1": "fp32", "conv3d_1": "fp32", "conv3d_2": "int8", "conv3d_4": "int8",
                  "up_sampling3d_1": "fp32", "batch_normalization_1": "fp32"}
    return ov.build_mixed(generator, calibration, precisions, name="test-mixed", default="bf16")


def precisions_of(variant) -> dict[str, str]:
    return {row.op: row.precision for row in variant.op_report().rows}


def test_upsampling_follows_the_convolution_after_it(ov, generator):
    resolved = ov.resolve_precisions(generator, {"conv3d_2": "int8", "conv3d_3": "bf16"})
    assert resolved["up_sampling3d_1"] == "int8" and resolved["up_sampling3d_2"] == "fp32"
    assert resolved["dense_1"] == resolved["batch_normalization_1"] == "fp32"
    explicit = ov.resolve_precisions(generator, {"conv3d_2": "int8", "up_sampling3d_1": "bf16"}, default="bf16")
    assert explicit["up_sampling3d_1"] == "bf16" and explicit["conv3d_1"] == "bf16"
    assert "zero_padding3d_1" not in resolved and "latent" not in resolved


@pytest.mark.parametrize(("precisions", "default", "message"), [
    ({"conv3d_9": "int8"}, "fp32", "unknown layer.*conv3d_9"),
    ({"zero_padding3d_1": "fp32"}, "fp32", "unknown layer.*zero_padding3d_1"),
    ({"conv3d_2": "int4"}, "fp32", "unknown precision.*conv3d_2: 'int4'"),
    ({"batch_normalization_1": "int8"}, "fp32", "int8 applies to .* not batch_normalization_1"),
    ({}, "int8", "default precision must be one of"),
])
def test_bad_assignments_name_the_problem(ov, generator, calibration, precisions, default, message):
    with pytest.raises(VariantError, match=message):
        ov.build_mixed(generator, calibration, precisions, default=default)


def test_int8_needs_a_calibration(ov, generator):
    with pytest.raises(VariantError, match="calibration must be"):
        ov.build_mixed(generator, None, {"conv3d_2": "int8"})


def test_all_fp32_is_the_fp32_variant(ov, generator, inputs, fp32_showers):
    variant = ov.build_mixed(generator, None, {"conv3d_1": "fp32"})
    assert variant.info["inference_precision"] == "f32" and "int8_ignored_layers" not in variant.info
    np.testing.assert_array_equal(variant.generate(*inputs), fp32_showers)
    assert set(precisions_of(variant).values()) == {"fp32"}


@needs_bf16
def test_executed_precisions_follow_the_request(mixed):
    precisions = precisions_of(mixed)
    assert precisions.pop("batch_normalization_1") in ("fp32", "none")  # may be folded into conv3d_2's quantizer
    assert precisions == {"dense_1": "fp32", "conv3d_1": "fp32", "conv3d_2": "int8", "conv3d_3": "bf16",
                          "conv3d_4": "int8", "up_sampling3d_1": "fp32"}
    report = mixed.op_report()
    assert report.source == "OpenVINO runtime model (executed precisions)"
    assert "inference precision hint bf16" in report.notes
    assert any(n.startswith("requested: batch_normalization_1 fp32, conv3d_1 fp32") and n.endswith("layers bf16")
               for n in report.notes)
    assert not any("differs" in n for n in report.notes)
    assert {"dense_1", "conv3d_1", "up_sampling3d_1", "conv3d_3"} <= set(mixed.info["int8_ignored_layers"])
    assert not {"conv3d_2", "conv3d_4"} & set(mixed.info["int8_ignored_layers"])
    others = report.notes[-1]  # nothing between the float dense_1 and conv3d_1 is quantized
    assert "Reshape i8" not in others and "Transpose i8" not in others


@needs_bf16
def test_mixed_showers_are_showers(mixed, inputs, fp32_showers):
    showers = mixed.generate(*inputs)
    assert showers.shape == (6, 25, 25, 25) and showers.dtype == np.float32
    assert np.all(np.isfinite(showers)) and np.all(showers >= 0)
    assert showers.sum() > 0.1 * fp32_showers.sum()  # GeV, same scale as FP32 (nothing lost to a unit slip)


@needs_bf16
def test_bf16_except_conv3d_1_matches_fp32(ov, generator, inputs, fp32_showers):
    """conv3d_1 kept f32 (oneDNN's AMX-bf16 kernel for it is wrong); every other layer bf16: within bf16 rounding."""
    variant = ov.build_mixed(generator, None, {"conv3d_1": "fp32"}, default="bf16")
    assert precisions_of(variant) == {"dense_1": "bf16", "conv3d_1": "fp32", "conv3d_2": "bf16",
                                      "conv3d_3": "bf16", "conv3d_4": "bf16"}
    np.testing.assert_allclose(variant.generate(*inputs).sum(axis=(1, 2, 3)), fp32_showers.sum(axis=(1, 2, 3)),
                               rtol=0.03)


@needs_bf16
def test_save_load_keeps_hint_markers_and_outputs(ov, mixed, inputs, tmp_path):
    from quant.openvino_graph import kept_precision_ops

    directory = mixed.save(tmp_path / "mixed")
    loaded = ov.load(directory)
    assert loaded.name == "test-mixed" and loaded.info == mixed.info
    assert loaded.info["inference_precision"] == "bf16"
    assert kept_precision_ops(loaded.model) == kept_precision_ops(mixed.model) == mixed.info["kept_f32_ops"]
    assert loaded.op_report() == mixed.op_report()
    np.testing.assert_array_equal(loaded.generate(*inputs), mixed.generate(*inputs))


def test_bf16_needs_a_bf16_cpu(ov, generator, calibration, monkeypatch, tmp_path):
    monkeypatch.setattr("gan.machine.cpu_flags", lambda: frozenset({"avx512f", "avx512_vnni"}))
    with pytest.raises(VariantUnavailable, match="avx512_bf16 or amx_bf16") as error:
        ov.build_mixed(generator, calibration, {"conv3d_1": "int8"}, default="bf16")
    assert error.value.name == "openvino-mixed"
    assert "avx512_bf16 or amx_bf16" in registry.unavailable_reason("int8+bf16")
    ov.build_mixed(generator, calibration, {"conv3d_1": "int8"})  # no bf16 layer: fine


@needs_bf16
def test_int8_bf16_variant(generator, calibration, inputs, tmp_path):
    variant = registry.build("int8+bf16", generator, calibration)
    assert precisions_of(variant) == {"dense_1": "int8", "conv3d_1": "int8", "conv3d_2": "int8",
                                      "conv3d_3": "bf16", "conv3d_4": "bf16"}
    assert variant.info["precisions"] == {"dense_1": "int8", "conv3d_1": "int8", "conv3d_2": "int8"}
    assert variant.info["layer_precisions"]["up_sampling3d_1"] == "int8"
    assert variant.info["layer_precisions"]["up_sampling3d_2"] == "bf16"
    assert "Interpolate i8 x1" in variant.op_report().notes[-1]
    loaded = registry.load(variant.save(tmp_path / "int8+bf16"))
    np.testing.assert_array_equal(loaded.generate(*inputs), variant.generate(*inputs))


def test_keep_precision_marks_only_existing_ops(ov, generator):
    from quant.openvino_graph import build_model, keep_original_precision, kept_precision_ops, layer_ops

    model = build_model(generator)
    assert layer_ops(model, "conv3d_2") == ["conv3d_2", "conv3d_2/bias"]
    marked = keep_original_precision(model, ["conv3d_2", "up_sampling3d_1"])
    assert kept_precision_ops(marked) == ["up_sampling3d_1", "conv3d_2"] and kept_precision_ops(model) == []
    with pytest.raises(VariantError, match="no op named conv3d_9"):
        keep_original_precision(model, ["conv3d_2", "conv3d_9"])
