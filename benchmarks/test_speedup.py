"""Showers/s and speed-up over FP32 of each (model, variant, batch size); with --gate, failing below the floor.

The speed-up comes from interleaved FP32/variant calls on the same batch (quant.speed), the showers/s and the
latency per batch from pytest-benchmark's rounds of the variant alone (saved, compared with
--benchmark-compare; trend data only: absolute times depend on what else runs on the machine).
"""

from __future__ import annotations

import resource
import time

import pytest

from benchmarks import floors, geant4, machine
from quant.speed import paired_speedup, showers_per_second


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _speedup(run_reference, run_variant, timing):
    """Warm both up, size the run from one timed pair, then the interleaved pairs."""
    run_reference(), run_variant()
    pair_s = _seconds(run_reference) + _seconds(run_variant)
    return paired_speedup(run_reference, run_variant, pairs=timing.pairs(pair_s), warmup=0)


def _timed_rounds(benchmark, run_variant, call_s: float, timing) -> tuple[float, float]:
    """pytest-benchmark's rounds of the variant: (mean, median) seconds per batch (``call_s`` if disabled)."""
    benchmark.pedantic(run_variant, rounds=timing.rounds(call_s), warmup_rounds=timing.warmup_rounds, iterations=1)
    stats = benchmark.stats.stats if benchmark.stats else None
    return (stats.mean, stats.median) if stats else (call_s, call_s)


def test_speedup(model_ready, variant, batch_size, bench_state, builds, benchmark, geant4_bins,
                 known_physics_failures, request):
    from gan.machine import cpu_flags

    model, state = model_ready, bench_state
    built, build_s = builds.variant(model, variant)
    reference, _ = builds.variant(model, state.settings.reference)
    inputs = builds.inputs(model, batch_size)

    def run_variant():
        built.generate(inputs.z, inputs.energy)

    def run_reference():
        reference.generate(inputs.z, inputs.energy)

    if variant == state.settings.reference:
        run_variant()
        speedup, call_s = None, _seconds(run_variant)
    else:
        speedup = _speedup(run_reference, run_variant, state.timing).to_dict()
        call_s = speedup["variant_s"]
    benchmark.group = f"{model} batch {batch_size}"
    mean_s, median_s = _timed_rounds(benchmark, run_variant, call_s, state.timing)

    report, versions = built.op_report(), machine.package_versions().get
    inner = getattr(built, "batch_size", None)
    row = {
        "test_id": request.node.nodeid, "model": model, "variant": variant, "batch": batch_size,
        "threads": state.threads,
        "seconds_per_batch": mean_s, "median_seconds_per_batch": median_s,
        "showers_per_s": showers_per_second(mean_s, batch_size), "speedup": speedup,
        "geant4": geant4.speedup_per_bin(geant4_bins, mean_s / batch_size, state.threads) if geant4_bins else None,
        "op_summary": report.summary(), "int8_ops": report.count("int8"), "size_bytes": built.size_bytes(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "build_s": build_s,
        "physics": known_physics_failures(model, variant),
        "floor": floors.floor_status(state.floor_table, model, variant, batch_size, speedup, state.threads,
                                     cpu_flags(), versions),
        "target": floors.target_status(state.floor_table, variant, batch_size, speedup, state.threads, cpu_flags(),
                                       versions),
        "notes": [f"{variant}: runs a batch of {batch_size} as batches of {inner} (its own limit)"]
        if inner and inner < batch_size else [],
    }
    benchmark.extra_info.update(row, peak_rss_note="process peak RSS so far (all variants built until now)",
                                threads_applied=state.threads_applied)
    state.rows.append(row)

    floor = row["floor"]
    if state.gate and floor and floor["verdict"] == "FAIL":
        pytest.fail(f"{model}-{variant} batch {batch_size}: speed-up {speedup['median']:.2f}x "
                    f"[{speedup['low']:.2f}, {speedup['high']:.2f}] is below its floor {floor['floor']:g}x "
                    f"(floor measured: {floor['measured']})", pytrace=False)
