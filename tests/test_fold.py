"""The fold (quant.fold): the maths against brute force, the folded generator against the original, the folded
variants' build-time check, save and load."""

import importlib.util

import numpy as np
import pytest

from quant import fold, registry
from quant.base import VariantError

EXACT = fold.MAX_RELATIVE_L2
ENERGY_RATIO_DIGITS = 4  # "energy ratio 1.0000"


def upsample(x, sizes):
    for axis, s in enumerate(sizes, start=1):
        x = np.repeat(x, s, axis=axis)
    return x


@pytest.mark.parametrize(("sizes", "pads", "kernel", "grid"), [
    ((2, 2, 2), ((2, 2), (2, 2), (0, 0)), (6, 5, 8), (7, 7, 8)),  # conv3d_2
    ((2, 2, 3), ((1, 1), (0, 0), (3, 3)), (3, 3, 8), (4, 5, 3)),  # conv3d_3 (smaller grid)
    ((3, 1, 2), ((0, 2), (1, 0), (2, 1)), (2, 3, 4), (3, 4, 3)),  # odd scales, asymmetric pads
])
def test_subpixel_fold_equals_upsample_pad_conv(sizes, pads, kernel, grid):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, *grid, 3))
    k = rng.normal(size=(*kernel, 3, 2))
    brute = fold.conv3d(upsample(x, sizes), k, pads)
    plans = [fold.AxisPlan(s, p[0], kk, n, o)
             for s, p, kk, n, o in zip(sizes, pads, kernel, grid, brute.shape[1:4], strict=True)]
    low = fold.conv3d(x, fold.subpixel_kernel(k, plans), [p.lowres_pads for p in plans])
    folded = fold.depth_to_space(low, sizes, brute.shape[1:4])
    np.testing.assert_allclose(folded, brute, rtol=1e-12, atol=1e-12)


def test_axis_plans_of_the_3dgan_match_the_issue():
    """The shapes the rewrite is known for: conv3d_2 -> 4x3x5 kernel, conv3d_3 -> 3x2x4."""
    conv2 = [fold.AxisPlan(2, 2, 6, 7, 13), fold.AxisPlan(2, 2, 5, 7, 14), fold.AxisPlan(2, 0, 8, 8, 9)]
    conv3 = [fold.AxisPlan(2, 1, 3, 13, 26), fold.AxisPlan(2, 0, 3, 14, 26), fold.AxisPlan(3, 3, 8, 9, 26)]
    assert [p.folded_kernel for p in conv2] == [4, 3, 5]
    assert [p.folded_kernel for p in conv3] == [3, 2, 4]


def test_numpy_conv3d_matches_tensorflow_same_padding():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(2)
    x, k = rng.normal(size=(2, 7, 7, 8, 3)), rng.normal(size=(6, 6, 8, 3, 4))
    expected = tf.nn.conv3d(tf.constant(x), tf.constant(k), [1] * 5, "SAME").numpy()
    np.testing.assert_allclose(fold.conv3d(x, k, fold.same_pads(k.shape[:3])), expected, rtol=1e-10, atol=1e-10)


def test_merged_dense_equals_dense_then_conv():
    rng = np.random.default_rng(3)
    grid, kernel = (3, 4, 5, 2), rng.normal(size=(3, 2, 4, 2, 3))
    w, b, z = rng.normal(size=(6, 120)), rng.normal(size=120), rng.normal(size=(4, 6))
    conv_bias, pads = rng.normal(size=3), fold.same_pads(kernel.shape[:3])
    expected = fold.conv3d((z @ w + b).reshape(-1, *grid), kernel, pads) + conv_bias
    merged_w, merged_b = fold.merge_dense_conv(w, b, grid, kernel, conv_bias, pads)
    np.testing.assert_allclose((z @ merged_w + merged_b).reshape(expected.shape), expected, rtol=1e-12, atol=1e-12)


def _assert_exact(result):
    assert result.relative_l2 <= EXACT, result.format()
    assert round(result.energy_ratio, ENERGY_RATIO_DIGITS) == 1.0, result.format()


@pytest.mark.tf
def test_folded_generator_is_exact_on_random_weights(seeded_generator):
    from quant import fp32

    folded = fold.fold_generator(seeded_generator)
    assert sum(fold.macs_per_shower(folded).values()) < 0.3 * sum(fold.macs_per_shower(seeded_generator).values())
    _assert_exact(fold.exactness(fp32.build(seeded_generator).generate,
                                 fp32.KerasVariant("f", folded, "").generate))


@pytest.mark.tf
@pytest.mark.shared
def test_folded_generator_is_exact_on_cern_weights(cern_weights):
    from gan.pretrained import load_generator
    from quant import fp32

    generator = load_generator(str(cern_weights))
    _assert_exact(fold.exactness(fp32.build(generator).generate,
                                 fp32.KerasVariant("f", fold.fold_generator(generator), "").generate))


@pytest.mark.tf
def test_fold_rejects_another_layout():
    import keras

    z = keras.Input(shape=(8,))
    x = keras.layers.Reshape((2, 2, 2, 1))(z)
    x = keras.layers.UpSampling3D((2, 2, 2))(x)
    model = keras.Model(z, keras.layers.Flatten(name="flat")(x))
    with pytest.raises(fold.FoldError, match="flat: an UpSampling3D must be followed by"):
        fold.fold_generator(model)


@pytest.mark.tf
def test_build_fails_on_a_wrong_fold(seeded_generator, monkeypatch):
    """The build-time check sees a fold that is off: here every folded tap scaled by 1.01."""
    from quant import folded

    good = fold.subpixel_kernel
    monkeypatch.setattr(fold, "subpixel_kernel", lambda kernel, plans: 1.01 * good(kernel, plans))
    monkeypatch.setattr(folded, "_FOLDS", {})  # no fold cached from another test
    with pytest.raises(VariantError, match="not exact"):
        registry.build("folded", seeded_generator, None)


@pytest.mark.tf
def test_folded_variant_reports_its_fold_and_is_exact(seeded_generator):
    """(save/load round trip: tests/test_variant_contract.py)"""
    from quant import fp32

    variant = registry.build("folded", seeded_generator, None)
    report = variant.op_report().format()
    assert "fold exactness" in report and "dense_conv3d_1" in report and "conv3d_2_phases" in report
    z, energy = fold.exactness_inputs(8, seed=5)
    _assert_exact(fold.compare(fp32.build(seeded_generator).generate(z, energy), variant.generate(z, energy)))


@pytest.mark.tf
@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
def test_folded_openvino_export_is_exact(seeded_generator, tmp_path):
    from quant import fp32

    variant = registry.build("folded-openvino", seeded_generator, None)
    assert "OpenVINO f32 export vs fp32" in variant.op_report().format()
    z, energy = fold.exactness_inputs(8, seed=6)
    loaded = registry.load(variant.save(tmp_path / "ov"))
    _assert_exact(fold.compare(fp32.build(seeded_generator).generate(z, energy), loaded.generate(z, energy)))


@pytest.mark.tf
@pytest.mark.skipif(importlib.util.find_spec("nncf") is None, reason="nncf not installed")
def test_int8_weight_only_dense_keeps_everything_else_f32(seeded_generator):
    variant = registry.build("folded-int8w-dense", seeded_generator, None)
    rows = {row.op: row.precision for row in variant.op_report().rows}
    assert rows == {"dense_conv3d_1": "int8", "conv3d_2_phases": "fp32", "conv3d_3_phases": "fp32",
                    "conv3d_4": "fp32"}
    assert "this variant vs the original fp32" in variant.op_report().format()


@pytest.mark.tf
def test_folded_bf16_runs_the_folded_layers_in_bf16(seeded_generator):
    if registry.unavailable_reason("folded-bf16"):
        pytest.skip(registry.unavailable_reason("folded-bf16"))
    rows = {row.op: row.precision for row in registry.build("folded-bf16", seeded_generator, None).op_report().rows}
    assert rows["dense_conv3d_1"] == rows["conv3d_2_phases"] == rows["conv3d_4"] == "bf16"
