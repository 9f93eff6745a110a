"""Logic of the benchmark suite (no timing): floors and the gate, ISA comparison, Geant4 per-bin speed-ups,
selection options, the summary table; and the first-run / ISA-refusal behaviour of `pytest benchmarks`."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from benchmarks import floors, geant4, machine, summary
from benchmarks import settings as bench_settings
from gan.physics import geant4_cpu_per_bin, speedup_over_geant4

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = {"tensorflow": "2.21.0", "openvino": "2026.4.1", "nncf": "3.4.0"}.get
FLOOR_TOML = """
noise_margin = 0.4
[[floor]]
model = "default"
variant = "bf16"
batch = 128
threads = 2
floor = 1.5
cpu = "test Xeon"
cpu_flags = ["amx_bf16"]
packages = { tensorflow = "==2.21.*" }
[[target]]
variant = "bf16"
batch = 128
threads = 2
speedup = 3.0
"""


def _speedup(median, low, high):
    return {"median": median, "low": low, "high": high}


# --- floors and the gate -----------------------------------------------------------------------------------------

def test_floor_table_parses():
    table = floors.parse(FLOOR_TOML)
    assert table.noise_margin == 0.4
    floor = table.floor_for("default", "bf16", 128)
    assert floor.floor == 1.5 and floor.scope.cpu_flags == ("amx_bf16",)
    assert table.floor_for("default", "bf16", 32) is None and table.floor_for("cern2017", "bf16", 128) is None
    assert table.target_for("bf16", 128).speedup == 3.0


@pytest.mark.parametrize(("edit", "match"), [
    (lambda t: t.replace("floor = 1.5", "floor = 1.5\ncolour = 1"), "unknown field"),
    (lambda t: t.replace("floor = 1.5\n", ""), "missing"),
    (lambda t: t.replace("floor = 1.5", "floor = 0"), "must be > 0"),
    (lambda t: t.replace('"==2.21.*"', '"=>2.21"'), "bad version specifier"),
    (lambda t: t + t[t.index("[[floor]]"):t.index("[[target]]")], "more than one floor"),
])
def test_bad_floor_tables_are_refused(edit, match):
    with pytest.raises(ValueError, match=match):
        floors.parse(edit(FLOOR_TOML[FLOOR_TOML.index("noise_margin"):]))


def test_the_committed_floor_file_is_valid():
    table = floors.load()
    assert all(f.floor > 0 and f.cpu for f in table.floors)  # each says which CPU it came from
    assert all(f.measured for f in table.floors if f.scope.specificity() == 2)  # measured ones say when and what
    assert {t.variant for t in table.targets} >= {"bf16", "openvino-int8", "inc-int8", floors.BEST_INT8}


AMX = {"amx_tile", "amx_int8", "amx_bf16", "avx512f", "avx512_bf16", "avx2"}
ZEN4 = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}  # like this project's AMD EPYC


@pytest.mark.parametrize(("flags", "klass"), [
    (AMX, "amx"), (ZEN4, "avx512-bf16"), ({"avx2", "avx512f", "avx512_vnni"}, "avx512"), ({"avx2"}, "avx2"),
    ({"sse4_2"}, "other")])
def test_cpu_class(flags, klass):
    assert floors.cpu_class(flags) == klass


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("flags", [AMX, ZEN4, {"avx2"}, {"avx2", "avx512f"}])
def test_the_committed_floors_gate_on_every_cpu_class_and_thread_count(flags, threads):
    """Issue #14: whatever the CPU and threads, some floor gates (a conservative one where none was measured)."""
    assert floors.load().applicable(threads, flags, VERSIONS)


CLASS_TOML = """
[[floor]]
model = "default"
variant = "bf16"
batch = 128
threads = "any"
cpu_class = "any"
cpu = "any: conservative"
floor = 0.6
[[floor]]
model = "default"
variant = "bf16"
batch = 128
threads = 2
cpu_class = "avx512-bf16"
cpu = "AMD EPYC"
floor = 1.2
"""


@pytest.mark.parametrize(("threads", "flags", "gating"), [
    (2, ZEN4, 1.2),  # measured for this class and thread count: the specific floor gates
    (1, ZEN4, 0.6),  # other thread count: the conservative one
    (2, AMX, 0.6),  # other class: the conservative one
])
def test_the_most_specific_applicable_floor_gates(threads, flags, gating):
    table = floors.parse(CLASS_TOML)
    assert table.floor_for("default", "bf16", 128, threads, flags, VERSIONS).floor == gating
    (only,) = table.applicable(threads, flags, VERSIONS)
    assert only.floor == gating
    assert floors.floor_status(table, "default", "bf16", 128, _speedup(1.0, 0.9, 1.1), threads, flags,
                               VERSIONS)["verdict"] == ("FAIL" if gating > 1.1 else "PASS")


@pytest.mark.parametrize(("edit", "match"), [
    (lambda t: t.replace('cpu_class = "avx512-bf16"', 'cpu_class = "zen9"'), "unknown cpu_class"),
    (lambda t: t.replace('threads = 2', 'threads = "two"'), "threads must be"),
    (lambda t: t.replace('cpu = "AMD EPYC"\n', ''), "missing"),
    (lambda t: t.replace('cpu_class = "avx512-bf16"', 'cpu_class = "any"').replace("threads = 2", 'threads = "any"'),
     "more than one floor"),
])
def test_bad_class_floors_are_refused(edit, match):
    with pytest.raises(ValueError, match=match):
        floors.parse(edit(CLASS_TOML))


def test_write_replaces_only_this_class_and_thread_count(tmp_path):
    rows = [{"model": "default", "variant": "bf16", "batch": 128, "threads": 2, "speedup": _speedup(2.0, 1.9, 2.1)}]
    base = CLASS_TOML.replace("threads = 2", "threads = 1")  # a 1-thread floor of this class: must be kept
    first = floors.replace_block(base, "avx512-bf16", 2, floors.propose(rows, 0.4, ZEN4, {}, "AMD EPYC 9R14"))
    rows[0]["speedup"] = _speedup(3.0, 2.9, 3.1)
    second = floors.replace_block(first, "avx512-bf16", 2, floors.propose(rows, 0.4, ZEN4, {}, "AMD EPYC 9R14"))
    path = tmp_path / "floors.toml"
    floors.write_floors(path, second)
    table = floors.load(path)
    assert len(table.floors_for("default", "bf16", 128)) == 3  # any, 1 thread, and the rewritten 2-thread one
    assert table.floor_for("default", "bf16", 128, 2, ZEN4, VERSIONS).floor == pytest.approx(1.8)
    assert table.floor_for("default", "bf16", 128, 2, ZEN4, VERSIONS).cpu == "AMD EPYC 9R14"
    assert table.floor_for("default", "bf16", 128, 1, ZEN4, VERSIONS).floor == 1.2  # the 1-thread one kept
    assert second.count("# >>> measured floors: cpu_class avx512-bf16, 2 threads") == 1


@pytest.mark.parametrize(("threads", "flags", "versions", "reason"), [
    (2, {"amx_bf16", "avx512f"}, VERSIONS, None),
    (4, {"amx_bf16"}, VERSIONS, "measured with 2 threads, here 4"),
    (2, {"avx512f"}, VERSIONS, "needs CPU flag amx_bf16"),
    (2, {"amx_bf16"}, {"tensorflow": "2.15.1"}.get, "tensorflow==2.21.*, here 2.15.1"),
    (2, {"amx_bf16"}, {}.get, "here not installed"),
])
def test_floor_scope(threads, flags, versions, reason):
    scope = floors.parse(FLOOR_TOML).floor_for("default", "bf16", 128).scope
    why = scope.mismatch(threads, flags, versions)
    assert why == reason if reason is None else reason in why


@pytest.mark.parametrize(("speedup", "verdict"), [
    (_speedup(1.2, 1.0, 1.4), "FAIL"),  # the whole interval is below the floor 1.5
    (_speedup(1.4, 1.2, 1.6), "PASS"),  # the median is below, but the interval reaches the floor: not shown to fail
    (_speedup(1.2, 1.0, 1.5), "PASS"),  # upper end exactly at the floor
    (_speedup(2.0, 1.8, 2.2), "PASS"),
])
def test_gate_fails_only_when_the_interval_is_below_the_floor(speedup, verdict):
    table = floors.parse(FLOOR_TOML)
    status = floors.floor_status(table, "default", "bf16", 128, speedup, 2, {"amx_bf16"}, VERSIONS)
    assert status["verdict"] == verdict and status["reason"] is None and status["floor"] == 1.5


def test_floor_not_applying_here_has_no_verdict():
    table = floors.parse(FLOOR_TOML)
    status = floors.floor_status(table, "default", "bf16", 128, _speedup(0.5, 0.4, 0.6), 2, {"avx2"}, VERSIONS)
    assert status["verdict"] is None and "amx_bf16" in status["reason"]
    assert floors.floor_status(table, "default", "fp32", 128, None, 2, {"amx_bf16"}, VERSIONS) is None


def test_target_met_on_the_median():
    table = floors.parse(FLOOR_TOML)
    met = floors.target_status(table, "bf16", 128, _speedup(3.1, 2.5, 3.5), 2, {"amx_bf16"}, VERSIONS)
    missed = floors.target_status(table, "bf16", 128, _speedup(2.9, 2.5, 3.5), 2, {"amx_bf16"}, VERSIONS)
    assert met["met"] is True and missed["met"] is False


@pytest.mark.parametrize(("median", "margin", "floor"), [(2.0, 0.5, 1.0), (3.37, 0.3, 2.35), (1.0, 0.0, 1.0)])
def test_proposed_floor_is_the_median_less_the_margin_rounded_down(median, margin, floor):
    assert floors.proposed_floor(median, margin) == pytest.approx(floor)
    assert floors.proposed_floor(median, margin) <= median * (1 - margin)


def test_proposed_floors_round_trip_through_the_parser():
    rows = [{"model": "default", "variant": "openvino-int8", "batch": 128, "threads": 2,
             "speedup": _speedup(3.0, 2.8, 3.2)},
            {"model": "default", "variant": "fp32", "batch": 128, "threads": 2, "speedup": None}]
    text = floors.propose(rows, 0.3, ["amx_int8", "avx512_vnni"], {"tensorflow": "2.21.0", "openvino": "2026.4.1",
                                                                   "nncf": "3.4.0"}, "test machine")
    table = floors.parse(text)
    (floor,) = table.floors
    assert (floor.model, floor.variant, floor.batch, floor.floor) == ("default", "openvino-int8", 128, 2.1)
    assert floor.scope.packages == {"tensorflow": "==2.21.*", "openvino": "==2026.4.*", "nncf": "==3.4.*"}
    assert floor.scope.mismatch(2, {"amx_int8", "avx512_vnni"}, VERSIONS) is None
    assert floor.cpu == "test machine" and floor.scope.cpu_class == floors.cpu_class(["amx_int8", "avx512_vnni"])


def test_proposal_from_a_saved_json(tmp_path, capsys):
    payload = {"machine": {"isa": {"flags": ["amx_bf16"]}, "packages": {"tensorflow": "2.21.0"}, "cpu_model": "x"},
               "rows": [{"model": "default", "variant": "bf16", "batch": 128, "threads": 2,
                         "speedup": _speedup(2.0, 1.9, 2.1)}]}
    path = tmp_path / "speedups.json"
    path.write_text(json.dumps(payload))
    assert floors.main(["--from-json", str(path), "--margin", "0.25"]) == 0
    assert floors.parse(capsys.readouterr().out).floor_for("default", "bf16", 128).floor == 1.5


# --- machine: ISA comparison, threads ------------------------------------------------------------------------------

def _info(flags, cap=None):
    return {machine.KEY: {"isa": {"flags": sorted(flags), "onednn_max_cpu_isa": cap}}}


def test_same_isa_compares():
    assert machine.isa_mismatch(_info({"amx_int8", "avx512f"}), _info({"avx512f", "amx_int8"})) is None


def test_different_isa_is_refused_with_the_flags_named():
    why = machine.isa_mismatch(_info({"amx_int8", "amx_bf16", "avx512f"}), _info({"avx512f"}), "run 0003")
    assert why.startswith("run 0003") and "only this CPU has amx_bf16, amx_int8" in why
    why = machine.isa_mismatch(_info({"avx512f"}), _info({"avx512f", "avx512_vnni"}))
    assert "only the saved run's CPU had avx512_vnni" in why
    assert "ONEDNN_MAX_CPU_ISA" in machine.isa_mismatch(_info({"avx512f"}, "AVX512_CORE"), _info({"avx512f"}))


def test_saved_run_without_isa_record_is_refused():
    assert "no ISA record" in machine.isa_mismatch(_info({"avx2"}), {"cpu": {}})


def test_isa_signature_keeps_only_isa_flags():
    sig = machine.isa_signature({"fpu", "amx_int8", "avx2", "sse"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert sig == {"flags": ["amx_int8", "avx2"], "onednn_max_cpu_isa": "AVX2"}


def test_machine_info_comparison_ignores_json_round_trips():
    current = {"python_build": ("main", "Jan 1"), "cpu": {"count": 2, "flags": ["a"]}, machine.KEY: {"threads": 2}}
    saved = json.loads(json.dumps(current))
    assert machine.differing_keys(current, saved) == []
    saved["cpu"]["count"] = 4
    assert machine.differing_keys(current, saved) == ["cpu.count"]


def test_update_machine_info_drops_the_clock_and_adds_ours():
    info = {"cpu": {"hz_actual": [2.1e9, 0], "hz_actual_friendly": "2.1 GHz", "count": 2}}
    machine.update_machine_info(info, threads=2)
    assert info["cpu"] == {"count": 2}
    assert info[machine.KEY]["threads_requested"] == 2 and "tensorflow" in info[machine.KEY]["packages"]


# --- Geant4 per-bin speed-up ---------------------------------------------------------------------------------------

def test_median_per_bin_and_speedup():
    bins = geant4_cpu_per_bin([10, 20, 30, 60, 100], [0.1, 0.2, 0.9, 0.4, 0.5], [10, 50, 100])
    assert [(b["events"], b["median_s"]) for b in bins] == [(3, 0.2), (2, 0.45)]  # 100 GeV: last bin
    rows = speedup_over_geant4(bins, seconds_per_shower=0.01, threads=2)
    assert [r["speedup"] for r in rows] == pytest.approx([10.0, 22.5])  # 0.2 s / (0.01 s x 2 cores)
    assert rows[0]["gan_core_s_per_shower"] == pytest.approx(0.02)


def test_empty_bin_has_no_speedup():
    bins = geant4_cpu_per_bin([10, 20], [0.1, 0.2], [10, 50, 100])
    assert bins[1]["events"] == 0 and speedup_over_geant4(bins, 0.01, 1)[1]["speedup"] is None


@pytest.mark.parametrize("edges", [[10], [50, 10], [10, 10, 20]])
def test_bad_bin_edges_are_refused(edges):
    with pytest.raises(ValueError, match="edges must"):
        geant4_cpu_per_bin([10], [0.1], edges)


def test_bad_gan_time_is_refused():
    with pytest.raises(ValueError, match="seconds per shower"):
        speedup_over_geant4([], 0.0, 2)


def test_read_timing_errors_name_the_file(tmp_path):
    path = tmp_path / "no_timing.h5"
    with h5py.File(path, "w") as f:
        f["energy"] = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"no_timing\.h5: no g4_cpu_s dataset"):
        geant4.read_timing(path)
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["energy"], f["g4_cpu_s"] = np.ones(2, np.float32), np.array([0.1, -1.0], np.float32)
    with pytest.raises(ValueError, match=r"bad\.h5: g4_cpu_s has non-finite or non-positive"):
        geant4.read_timing(bad)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=r"garbage\.h5: unreadable HDF5"):
        geant4.read_timing(garbage)


def test_embedded_reference_carries_geant4_timing():
    from gan.pretrained import DEFAULT_REFERENCE

    timing = geant4.load_timing([DEFAULT_REFERENCE])
    assert len(timing.cpu_s) == len(timing.energy) == 500 and np.all(timing.cpu_s > 0)


# --- selection options, timing counts, summary ---------------------------------------------------------------------

KNOWN = ["bf16", "fp32", "inc-int8", "inc-int8-tuned", "openvino-int8", "tflite-fp16"]


def test_default_variants_leave_out_the_slow_ones_and_start_with_the_reference():
    settings = bench_settings.load()
    assert bench_settings.select_variants(None, None, KNOWN, settings) == ["fp32", "bf16", "inc-int8",
                                                                             "openvino-int8"]
    assert bench_settings.select_variants("all", "fp32,inc-*", KNOWN, settings) == ["bf16", "openvino-int8",
                                                                                     "tflite-fp16"]
    assert bench_settings.select_variants("tflite-*", None, KNOWN, settings) == ["fp32", "tflite-fp16"]


def test_unknown_selection_is_refused():
    with pytest.raises(ValueError, match="no variant matches 'int4'"):
        bench_settings.select(["int4"], KNOWN, "variant")
    with pytest.raises(ValueError, match="integers"):
        bench_settings.batch_sizes("1,lots", bench_settings.load())
    with pytest.raises(ValueError, match=">= 1"):
        bench_settings.batch_sizes("0", bench_settings.load())
    assert bench_settings.batch_sizes("128, 1", bench_settings.load()) == [128, 1]


def test_batch_caps():
    settings = bench_settings.load()
    assert settings.batch_cap("tflite-int8") is not None and settings.batch_cap("bf16") is None


def test_pair_and_round_counts_follow_the_budget():
    timing = bench_settings.Timing(10, 5, 40, 4, 3, 30, 1)
    assert timing.pairs(2.5) == 5 and timing.pairs(1.0) == 10 and timing.pairs(0.001) == 40
    assert timing.rounds(0.5) == 8 and timing.rounds(100) == 3 and timing.pairs(0.0) == 5


def _row(variant, median, int8_ops=0, physics="", batch=128):
    speedup = None if median is None else _speedup(median, median - .1, median + .1)
    return {"model": "default", "variant": variant, "batch": batch, "threads": 2, "showers_per_s": 100.0,
            "seconds_per_batch": 1.28, "speedup": speedup,
            "geant4": [{"speedup": 20.0}, {"speedup": 150.0}], "op_summary": "fp32 7", "int8_ops": int8_ops,
            "physics": physics, "floor": {"floor": 1.5, "verdict": "PASS"}, "target": None}


def test_best_int8_skips_known_physics_failures():
    rows = [_row("fp32", None), _row("openvino-int8", 3.0, 5, "known failure"), _row("inc-int8", 1.1, 1),
            _row("bf16", 2.0), _row("inc-int8", 1.9, 1, batch=32)]
    assert summary.best_int8(rows, 128)["variant"] == "inc-int8"
    assert summary.best_int8(rows[:2], 128) is None


def test_summary_table_and_json(tmp_path):
    text = summary.format_table([_row("fp32", None), _row("bf16", 2.0)])
    header, rule, fp32, bf16 = text.splitlines()
    assert "showers/s" in header and "speed-up vs fp32" in header and set(rule) == {"-"}
    assert "1 (reference)" in fp32 and "2.00x [1.90, 2.10]" in bf16 and "20-150x" in bf16 and "1.5x PASS" in bf16
    assert "last run" not in header
    compared = _row("bf16", 2.0) | {"last_run": {"speedup": _speedup(1.7, 1.6, 1.8), "showers_per_s": 90.0}}
    header, _, line = summary.format_table([compared]).splitlines()
    assert "last run" in header and "1.70x" in line
    path = summary.write_json(tmp_path / "out" / "speedups.json", {"rows": [_row("bf16", 2.0)]})
    assert json.loads(path.read_text())["rows"][0]["variant"] == "bf16"
    assert [p.name for p in path.parent.iterdir()] == ["speedups.json"]  # no temporary file left


# --- the plugin at start-up (collection only: nothing is timed) ---------------------------------------------------

def _pytest_benchmarks(tmp_path, *args):
    command = [sys.executable, "-m", "pytest", "benchmarks", "--collect-only", "-q", "-p", "no:cacheprovider",
               "--benchmark-storage", str(tmp_path / "store"), "--variants", "fp32", "--batch-sizes", "1", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_first_compare_without_a_saved_run_is_a_note(tmp_path):
    done = _pytest_benchmarks(tmp_path, "--benchmark-compare")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no saved run to compare with yet" in done.stdout and "Warning" not in done.stdout + done.stderr


@pytest.mark.slow
def test_compare_with_a_run_from_another_isa_is_refused(tmp_path):
    from pytest_benchmark.utils import get_machine_id

    saved = {"machine_info": _info({"avx2"}), "commit_info": {}, "benchmarks": [], "datetime": "2020-01-01",
             "version": "5.3.1"}
    folder = tmp_path / "store" / get_machine_id()
    folder.mkdir(parents=True)
    (folder / "0001_old.json").write_text(json.dumps(saved))
    done = _pytest_benchmarks(tmp_path, "--benchmark-compare")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "refusing to compare" in done.stderr and "different instruction set" in done.stderr


def _gate(tmp_path, floor_toml, *args):
    path = tmp_path / "floors.toml"
    path.write_text(floor_toml)
    command = [sys.executable, "-m", "pytest", "benchmarks", "--gate", "--floors", str(path), "-q", "-p",
               "no:cacheprovider", "--benchmark-storage", str(tmp_path / "store"),
               "--speedups-json", str(tmp_path / "s.json"), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_gate_with_no_floor_for_this_cpu_fails_unless_allowed(tmp_path):
    from gan.machine import cpu_flags

    elsewhere = next(c for c in floors.CPU_CLASSES if c != floors.cpu_class(cpu_flags()))
    toml = CLASS_TOML[CLASS_TOML.index("[[floor]]", 10):].replace("avx512-bf16", elsewhere)
    done = _gate(tmp_path, toml, "--collect-only")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "the gate gates nothing here" in done.stderr and "--gate-allow-none" in done.stderr
    allowed = _gate(tmp_path, toml, "--collect-only", "--gate-allow-none")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


@pytest.mark.slow
def test_gate_where_every_floor_is_skipped_fails(tmp_path):
    toml = CLASS_TOML[:CLASS_TOML.index("[[floor]]", 10)].replace('"bf16"', '"no-such-variant"')
    done = _gate(tmp_path, toml)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert "GATE FAILED: no floor was measured" in done.stdout
    assert _gate(tmp_path, toml, "--gate-allow-none").returncode == 0
