"""The legacy Intel stack (``tox -e itex``): what INC's variants really execute, and their physics on CERN's weights.

Executed precisions come from oneDNN's own log: a saved variant is run in a subprocess with ``ONEDNN_VERBOSE=1``
and the executed convolution primitives (implementation, data types) and ITEX's fused graph partitions are read
from it. Skipped without intel-extension-for-tensorflow, and where the CPU lacks the int8 / bf16 instructions.

The CERN-weights test prints, per INC variant, the total-energy shift per energy bin against FP32 and a rough
speed-up at batch 128 (``pytest -s`` shows them); re-measure with ``tox -e itex -- -k cern -s``.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quant import registry
from quant.calibration import make_calibration
from quant.cpu import BF16_FLAGS, INT8_FLAGS, has_any
from quant.inc import FP32_HEAD, itex_installed

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("dense_1", "conv3d_1", "conv3d_2", "conv3d_3", "conv3d_4")
INT8_TYPES = {"s8", "u8"}
RUN_SAVED = """import sys
import numpy as np
from quant import registry
variant = registry.load(sys.argv[1])
z = np.random.default_rng(0).standard_normal((8, 200)).astype(np.float32)
variant.generate(z, np.full(8, 100, np.float32))
"""
CERN_VARIANTS = ("inc-int8", "inc-int8-tuned", "inc-int8-bf16")
CERN_EDGES = np.array([100.0, 200.0, 300.0, 400.0, 500.0])

pytestmark = [pytest.mark.tf, pytest.mark.skipif(not itex_installed(),
                                                 reason="needs intel-extension-for-tensorflow: tox -e itex")]
needs_int8_cpu = pytest.mark.skipif(not has_any(INT8_FLAGS), reason=f"CPU has none of {INT8_FLAGS}")
needs_bf16_cpu = pytest.mark.skipif(not has_any(BF16_FLAGS), reason=f"CPU has none of {BF16_FLAGS}")


def executed(variant, directory) -> list[dict]:
    """oneDNN's executed primitives and graph partitions while the saved ``variant`` generates 8 showers."""
    from quant.inc_graph import onednn_verbose_executions

    variant.save(directory)
    env = {**__import__("os").environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-c", RUN_SAVED, str(directory)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return onednn_verbose_executions(run.stdout + run.stderr)


def convolutions(rows) -> list[dict]:
    return [row for row in rows if row["source"] == "primitive" and row["kind"] == "convolution"]


def fused_layers(rows, kind: str) -> set[str]:
    """Layers whose TF nodes ITEX fused into oneDNN graph partitions of ``kind`` (e.g. 'quantized_convolution')."""
    from quant.inc_graph import layer_of

    return {layer_of(op, LAYERS) for row in rows if row["source"] == "graph" and row["kind"].startswith(kind)
            for op in row["ops"]} - {""}


def is_int8(row) -> bool:
    return row["dtypes"].get("src") in INT8_TYPES and row["dtypes"].get("wei") == "s8"


@pytest.fixture(scope="module")
def calibration():
    return make_calibration(16, seed=0)


@needs_int8_cpu
def test_inc_int8_conv3d_runs_int8_on_amx_or_vnni(seeded_generator, calibration, tmp_path):
    """INC's op table says 'Conv3D INT8 0'; oneDNN's log shows all four convolutions executing int8."""
    rows = executed(registry.build("inc-int8", seeded_generator, calibration), tmp_path / "inc-int8")
    int8 = [row for row in convolutions(rows) if is_int8(row)]
    assert len(int8) >= 4, convolutions(rows)
    assert all("amx" in row["implementation"] or "vnni" in row["implementation"] for row in int8)
    assert fused_layers(rows, "quantized_convolution") == set(LAYERS[1:])
    assert fused_layers(rows, "quantized_matmul") == {"dense_1"}


@needs_int8_cpu
@needs_bf16_cpu
def test_inc_int8_bf16_runs_head_in_bf16(seeded_generator, calibration, tmp_path):
    variant = registry.build("inc-int8-bf16", seeded_generator, calibration)
    assert {row.op: row.precision for row in variant.op_report().rows} == {
        **dict.fromkeys(LAYERS[:3], "int8"), **dict.fromkeys(FP32_HEAD, "bf16")}
    rows = executed(variant, tmp_path / "inc-int8-bf16")
    convs = convolutions(rows)
    bf16 = [row for row in convs if row["dtypes"].get("src") == "bf16" and row["dtypes"].get("wei") == "bf16"]
    assert len(bf16) >= 2 and sum(map(is_int8, convs)) >= 2, convs
    assert not [row for row in convs if row["dtypes"].get("src") == "f32"], "a convolution ran in fp32"
    assert fused_layers(rows, "quantized_convolution") == {"conv3d_1", "conv3d_2"}


@needs_int8_cpu
@pytest.mark.shared
@pytest.mark.slow
def test_cern_weights_tuning_falls_back_and_mixes_keep_the_energy(cern_weights, capsys):
    """CERN's generator: all-int8 fails the physics; tuning must fall back at least conv3d_3 and conv3d_4 (the
    layers whose int8 inflates the energy) and keep some layer int8; the tuned and the int8+bf16 variants stay
    inside the cern2017 tolerance of the total energy in every bin (int8+bf16 still widens the showers beyond
    tolerance: a known failure of ``pytest validation``)."""
    from gan import model, paired
    from gan.pretrained import load_generator
    from quant.speed import paired_speedup
    from verdict import requirements

    generator = load_generator(str(cern_weights))
    calibration = make_calibration(64, seed=0, energy_range=(100, 500))
    rng = np.random.default_rng(2021)
    z, energy = model.sample_latent(100, seed=5), rng.uniform(100, 500, 100).astype(np.float32)
    reference = model.generate(generator, z, energy)
    batch = model.sample_latent(128, seed=9), rng.uniform(100, 500, 128).astype(np.float32)
    fp32 = registry.build("fp32", generator, calibration)
    limit = requirements.load("cern2017").strictest()["total_energy_mean"]
    shifts, lines = {}, []
    for name in CERN_VARIANTS if has_any(BF16_FLAGS) else CERN_VARIANTS[:2]:
        variant = registry.build(name, generator, calibration)
        rows = [r for r in paired.paired_shifts(reference, variant.generate(z, energy), energy, CERN_EDGES)
                if r["observable"] == "total_energy_mean"]
        shifts[name] = [r["shift"] for r in rows]
        speed = paired_speedup(lambda: fp32.generate(*batch), lambda v=variant: v.generate(*batch), pairs=4)
        lines.append(f"{name}: {variant.op_report().summary()}; total energy per bin "
                     f"{', '.join(f'{s:+.1%}' for s in shifts[name])}; speed-up {speed.format()}")
        if name == "inc-int8-tuned":
            tuned = variant
    with capsys.disabled():
        print("\n" + "\n".join(lines + [f"  {note}" for note in tuned.op_report().notes if note.startswith("trial")]))
    assert max(np.abs(shifts["inc-int8"])) > limit  # all int8: the failure tuning has to repair
    assert set(FP32_HEAD) <= set(tuned.info["fp32_layers"]) and tuned.op_report().count("int8") >= 1
    for name in shifts.keys() - {"inc-int8"}:
        assert max(np.abs(shifts[name])) < limit, (name, shifts[name])
