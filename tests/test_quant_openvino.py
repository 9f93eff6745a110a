"""OpenVINO variants: the opset-built graph matches Keras, INT8 reaches every convolution, save/load, errors."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan import model
from quant import registry
from quant.base import VariantError, write_variant_file
from quant.calibration import make_calibration

CONVS = ("conv3d_1", "conv3d_2", "conv3d_3", "conv3d_4")


@pytest.fixture(scope="module")
def generator(seeded_generator):
    return seeded_generator


@pytest.fixture(scope="module")
def inputs():
    return model.sample_latent(6, seed=3), np.array([10, 40, 100, 150, 200, 250], np.float32)


@pytest.fixture(scope="module")
def fp32_variant(generator):
    pytest.importorskip("openvino")
    return registry.build("openvino-fp32", generator, make_calibration(16, seed=0))


@pytest.fixture(scope="module")
def int8_variant(generator):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    return registry.build("openvino-int8", generator, make_calibration(16, seed=0))


def test_variants_registered_without_importing_runtimes():
    code = ("import sys; from quant import openvino; "
            "assert not {'openvino', 'nncf', 'tensorflow', 'keras'} & set(sys.modules), sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
    assert {"openvino-fp32", "openvino-int8"} <= set(registry.names())


def test_unavailable_reason_names_the_missing_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    assert registry.unavailable_reason("openvino-int8") == "nncf not installed"
    if real("openvino") is not None:
        assert registry.unavailable_reason("openvino-fp32") is None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert registry.unavailable_reason("openvino-fp32") == "openvino not installed"


@pytest.mark.tf
def test_fp32_matches_keras(generator, fp32_variant, inputs):
    reference, showers = model.generate(generator, *inputs), fp32_variant.generate(*inputs)
    assert showers.shape == (6, 25, 25, 25) and showers.dtype == np.float32
    assert np.abs(showers - reference).max() <= 1e-5 * np.abs(reference).max()
    np.testing.assert_allclose(showers.sum(axis=(1, 2, 3)), reference.sum(axis=(1, 2, 3)), rtol=1e-5)


@pytest.mark.tf
def test_fp32_runs_every_layer_in_fp32_not_bf16(fp32_variant):
    report = fp32_variant.op_report()
    assert [row.op for row in report.rows] == ["dense_1", *CONVS]
    assert report.count("fp32") == 5 and "bf16" not in report.format()


@pytest.mark.tf
def test_int8_runs_dense_and_all_four_convolutions_in_int8(int8_variant, inputs):
    report = int8_variant.op_report()
    assert {row.op: row.precision for row in report.rows} == dict.fromkeys(["dense_1", *CONVS], "int8")
    assert report.source == "OpenVINO runtime model (executed precisions)"
    showers = int8_variant.generate(*inputs)
    assert showers.shape == (6, 25, 25, 25) and showers.dtype == np.float32
    assert np.all(np.isfinite(showers)) and np.all(showers >= 0)


@pytest.mark.tf
def test_fp32_layers_stay_unquantized(generator):
    pytest.importorskip("nncf")
    from quant.openvino import FP32_HEAD, build_int8

    variant = build_int8(generator, make_calibration(16, seed=0), fp32_layers=FP32_HEAD)
    precisions = {row.op: row.precision for row in variant.op_report().rows}
    assert precisions == {"dense_1": "int8", "conv3d_1": "int8", "conv3d_2": "int8",
                          "conv3d_3": "fp32", "conv3d_4": "fp32"}
    assert "Interpolate f32 x1" in variant.op_report().notes[-1]  # the upsampling into conv3d_3 stays f32


@pytest.mark.tf
def test_saved_ir_keeps_its_info_and_size(fp32_variant, int8_variant, tmp_path):
    """(save/load showers: tests/test_variant_contract.py)"""
    for variant in (fp32_variant, int8_variant):
        directory = variant.save(tmp_path / variant.name)
        loaded = registry.load(directory)
        assert loaded.info == variant.info
        assert variant.size_bytes() == sum(
            p.stat().st_size for p in directory.glob("generator.*"))
    assert int8_variant.size_bytes() < 0.4 * fp32_variant.size_bytes()


@pytest.mark.tf
def test_bad_calibration_is_a_variant_error(generator):
    pytest.importorskip("nncf")
    with pytest.raises(VariantError, match="calibration must be"):
        registry.build("openvino-int8", generator, np.zeros((4, 200), np.float32))


def test_load_rejects_incomplete_or_mislabelled_directories(tmp_path):
    pytest.importorskip("openvino")
    write_variant_file(tmp_path, "openvino-int8")
    with pytest.raises(VariantError, match="lacks generator.xml"):
        registry.load(tmp_path)
    with pytest.raises(VariantError, match="not 'openvino-fp32'"):
        registry.get("openvino-fp32").load(tmp_path)


@pytest.fixture(scope="module")
def cern_generator(cern_weights):
    pytest.importorskip("openvino")
    from gan.pretrained import load_generator

    return load_generator(str(cern_weights))


@pytest.mark.tf
@pytest.mark.shared
def test_fp32_matches_keras_on_cern_weights(cern_generator):
    z, energy = model.sample_latent(16, seed=1), np.linspace(100, 500, 16, dtype=np.float32)
    variant = registry.build("openvino-fp32", cern_generator, make_calibration(16, seed=0))
    reference, showers = model.generate(cern_generator, z, energy), variant.generate(z, energy)
    assert abs(showers.sum() / reference.sum() - 1) < 1e-3


@pytest.mark.tf
@pytest.mark.shared
def test_int8_report_names_layers_on_cern_weights(cern_generator):
    """With CERN's weights the runtime FullyConnected is renamed 'dense_1/DequantizationMultiply'."""
    pytest.importorskip("nncf")
    variant = registry.build("openvino-int8", cern_generator, make_calibration(16, seed=0, energy_range=(100, 500)))
    assert {row.op: row.precision for row in variant.op_report().rows} == dict.fromkeys(["dense_1", *CONVS], "int8")
