"""Showers/s and speed-up over FP32 of each (model, variant, batch size); with --gate, failing below the floor.

The speed-up comes from interleaved FP32/variant calls on the same batch (quant.speed), the showers/s and the
latency per batch from pytest-benchmark's rounds of the variant alone (saved, compared with
--benchmark-compare; trend data only: absolute times depend on what else runs on the machine).
"""

from __future__ import annotations

import resource

import pytest

from benchmarks import floors
from gan.machine import package_version
from gan.physics import speedup_over_geant4
from quant.speed import seconds, showers_per_second
from study.runner import measure_speed


def _timed_rounds(benchmark, run_variant, call_s: float, timing) -> tuple[float, float]:
    """pytest-benchmark's rounds of the variant: (mean, median) seconds per batch (``call_s`` if disabled)."""
    benchmark.pedantic(run_variant, rounds=timing.rounds(call_s), warmup_rounds=timing.warmup_rounds, iterations=1)
    stats = benchmark.stats.stats if benchmark.stats else None
    return (stats.mean, stats.median) if stats else (call_s, call_s)


def test_speedup(model_ready, variant, batch_size, bench_state, builds, bench_inputs, benchmark, geant4_bins,
                 known_physics_failures, request):
    from gan.machine import cpu_flags

    model, state = model_ready, bench_state
    built, build_s = builds(model, variant)
    reference, _ = builds(model, state.settings.reference)
    inputs = bench_inputs(model, batch_size)

    def run_variant():
        built.generate(inputs.z, inputs.energy)

    if variant == state.settings.reference:
        run_variant()
        speed, call_s = None, seconds(run_variant)
    else:  # the study runner's measurement: one warm-up, interleaved pairs as many as the timing settings say
        speed = measure_speed(reference, built, inputs, [batch_size], state.timing.pairs)[batch_size]
        call_s = speed.speedup.variant_s
    speedup = speed.to_dict() if speed is not None else None  # the report's per-batch speed entry
    benchmark.group = f"{model} batch {batch_size}"
    mean_s, median_s = _timed_rounds(benchmark, run_variant, call_s, state.timing)

    report, versions = built.op_report(), package_version
    inner = getattr(built, "batch_size", None)
    row = {
        "test_id": request.node.nodeid, "model": model, "variant": variant, "batch": batch_size,
        "threads": state.threads,
        "seconds_per_batch": mean_s, "median_seconds_per_batch": median_s,
        "showers_per_s": showers_per_second(mean_s, batch_size), "speedup": speedup,
        "geant4": speedup_over_geant4(geant4_bins, mean_s / batch_size, state.threads) if geant4_bins else None,
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
