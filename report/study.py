"""The study behind the report: for each model and variant, build it, read its op coverage and size, time it
against FP32, generate showers for the same inputs as FP32 and check the physics (paired, and vs Geant4).

Everything reuses the suite's seams: inputs and the Geant4 reference from ``validation.samples``, verdicts from
``validation.checks`` with requirements from ``validation.requirements`` (paired) and thresholds from
``validation.geant4_null`` (Geant4-side), known failures from
``validation.known_failures``, speed-ups from ``quant.speed.paired_speedup``. The speed-ups are quick
measurements (few interleaved pairs, small batches); ``pytest benchmarks`` is the careful one.

Memory: each variant is built, measured and released (:func:`release_memory`) before the next one is built, and
showers are generated in chunks of :data:`GENERATE_CHUNK`, so the peak is the largest single variant plus what the
models share (the FP32 reference, inputs, samples), not the sum of all variants.
"""

from __future__ import annotations

import ctypes
import gc
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import numpy as np

from report.figures import FP32, GEANT4, Sample
from validation.samples import REFERENCE_VARIANT

DEFAULT_SHOWERS = 100  # per model: paired showers (and Geant4 reference events for the default model)
DEFAULT_BATCH_SIZES = (1, 32)
DEFAULT_PAIRS = 7  # most interleaved FP32/variant pairs per speed measurement
MIN_PAIRS = 3
MEMORY_BUDGET_BYTES = 3 * 10**9  # the main job's peak resident memory (README; tests/test_report_memory.py)
GENERATE_CHUNK = 64  # showers per generate() call for the physics samples: activations grow with the batch
PAIR_BUDGET_S = 3.0  # seconds of pairs per (variant, batch size); slow variants get MIN_PAIRS
PACKAGES = ("tensorflow", "keras", "numpy", "scipy", "h5py", "openvino", "nncf", "neural_compressor",
            "ai_edge_litert", "matplotlib", "mplhep")
ISA_FLAGS = ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
QUICK_NOTE = ("speed-ups here are quick measurements: {pairs} interleaved FP32/variant pairs at most per batch size "
              "(3 s each), median with 95% bootstrap interval, on a machine others may share; `pytest benchmarks` is "
              "the careful measurement")
# Variants whose build tunes or sweeps for minutes (accuracy-driven tuning, a layer-wise sensitivity sweep): run
# only when named in --variants (or with --variants all), so the default report stays within a few minutes.
SLOW_BUILD_REASON = "its build tunes for minutes; name it in --variants (or --variants all) to include it"
# TF warns on every TFLite int8 conversion without input statistics; the variant's input and output stay float32
QUIET_BUILD = "Statistics for quantized inputs were expected"


class StudyError(ValueError):
    """A study that cannot run as asked (unknown variant or model); the message says which and what exists."""


@dataclass(frozen=True)
class StudyConfig:
    models: tuple[str, ...]
    variants: tuple[str, ...]  # fp32 is always built as the reference and not listed here
    showers: int = DEFAULT_SHOWERS
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    speed: bool = True
    pairs: int = DEFAULT_PAIRS
    left_out: tuple[str, ...] = ()  # registered variants not run by default (quant.registry.slow_builds)


@dataclass
class Study:
    """What a run produced: the JSON-able results and the shower samples the figures are drawn from."""

    results: dict
    samples: dict[str, list[Sample]] = field(default_factory=dict)  # model -> Geant4?, FP32, variants


class Progress:
    """One line per step on stderr, with the seconds since the start."""

    def __init__(self, stream=None, enabled: bool = True):
        self.start, self.stream, self.enabled = time.perf_counter(), stream or sys.stderr, enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.start:6.1f} s] {message}", file=self.stream, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


# ------------------------------------------------------------------ choosing models and variants


def available_models() -> list[str]:
    """'default', plus 'cern2017' where its weights are found (../shared, cache, $CALOGAN_CERN_WEIGHTS)."""
    from gan.pretrained import find_cern_weights

    return ["default"] + (["cern2017"] if find_cern_weights() is not None else [])


def resolve_variants(requested: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """(variants to run, {variant: why it cannot run here}) for ``requested`` names, ``["all"]`` or the default.

    The default is every registered variant but the slow builds (:func:`quant.registry.slow_builds`).
    Unknown names raise :class:`StudyError` listing the known ones; fp32 is the reference and always implied.
    """
    from quant import registry

    known = registry.names()
    if requested is None:
        names = [n for n in known if n not in registry.slow_builds()]
    else:
        names = known if requested == ["all"] else requested
    unknown = [n for n in names if n not in known]
    if unknown:
        raise StudyError(f"unknown variant(s) {', '.join(unknown)}; known variants: {', '.join(known)}")
    chosen = list(dict.fromkeys(n for n in names if n != REFERENCE_VARIANT))
    unavailable = {n: r for n in chosen if (r := registry.unavailable_reason(n))}
    return chosen, unavailable


def left_out_by_default(chosen) -> tuple[str, ...]:
    """The registered slow-to-build variants a default run leaves out."""
    from quant import registry

    return tuple(n for n in registry.slow_builds() if n not in chosen)


def resolve_models(requested: list[str] | None) -> list[str]:
    from gan.pretrained import MODEL_NAMES, find_cern_weights

    if requested is None:
        return available_models()
    unknown = [m for m in requested if m not in MODEL_NAMES]
    if unknown:
        raise StudyError(f"unknown model(s) {', '.join(unknown)}; known models: {', '.join(MODEL_NAMES)}")
    if "cern2017" in requested and find_cern_weights() is None:
        raise StudyError("model cern2017: CERN weights not found; run `python -m gan fetch-cern` or leave it out")
    return list(dict.fromkeys(requested))


# ------------------------------------------------------------------ machine and software


def machine_facts() -> dict:
    from quant.cpu import cpu_flags, cpu_model

    flags = cpu_flags()
    return {"cpu_model": cpu_model(), "isa_flags": [f for f in ISA_FLAGS if f in flags],
            "logical_cpus": os.cpu_count(), "threads_used": threads_used(), "platform": platform.platform()}


def threads_used() -> int:
    """CPUs this process may run on (TensorFlow, OpenVINO and TFLite use them all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def software_versions() -> dict:
    from validation.known_failures import package_version

    return {"python": platform.python_version()} | {p: package_version(p) for p in PACKAGES}


# ------------------------------------------------------------------ inputs and references


def _reference(settings, n: int):
    """(Geant4 showers, where from): the shared file's held-out tail where present (first n), else embedded."""
    from gan.data import count_showers, read_showers
    from gan.pretrained import DEFAULT_REFERENCE, SHARED_DIR

    shared = SHARED_DIR / "data" / "g4_electrons_10-250GeV.h5"
    if shared.is_file():
        start = count_showers(shared) - settings.held_out_tail
        return read_showers(shared, start=start, max_events=n), \
            f"{shared.name}: first {n} of the {settings.held_out_tail} held-out events"
    return read_showers(DEFAULT_REFERENCE, max_events=n), f"{DEFAULT_REFERENCE.name} (embedded): first {n} events"


def geant4_cpu_table(reference, edges) -> list[dict]:
    """Median Geant4 CPU seconds per event in each energy bin of ``reference`` (needs its g4_cpu_s)."""
    from gan.physics import energy_bin_index

    if reference.g4_cpu_s is None:
        return []
    idx = energy_bin_index(reference.energy, edges)
    return [{"e_low": float(edges[b]), "e_high": float(edges[b + 1]), "events": int((idx == b).sum()),
             "median_s": float(np.median(reference.g4_cpu_s[idx == b]))}
            for b in range(len(edges) - 1) if (idx == b).any()]


def speedup_vs_geant4(g4_table: list[dict], seconds_per_shower: float, threads: int) -> list[dict]:
    """Per energy bin: median Geant4 CPU s/event over the GAN's CPU s/shower (wall s/shower x threads): per core."""
    core_s = seconds_per_shower * threads
    return [{"e_low": row["e_low"], "e_high": row["e_high"], "speedup": row["median_s"] / core_s} for row in g4_table]


# ------------------------------------------------------------------ speed


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def generate_in_chunks(variant, inputs, chunk: int = GENERATE_CHUNK) -> np.ndarray:
    """Showers (N, 25, 25, 25) GeV of ``variant`` for ``inputs``, ``chunk`` at a time (bounded memory)."""
    parts = [variant.generate(inputs.z[i:i + chunk], inputs.energy[i:i + chunk]) for i in range(0, len(inputs), chunk)]
    return np.concatenate(parts).astype(np.float32, copy=False)


def release_memory() -> None:
    """Hand freed memory back to the OS: Python's cycles, then glibc's free lists, so the next variant starts
    from the shared baseline instead of on top of the last one's heap."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: freed memory is reused by the allocator all the same
        pass


def batch_inputs(inputs, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``batch`` inputs (cycled if there are fewer)."""
    idx = np.arange(batch) % len(inputs)
    return inputs.z[idx], inputs.energy[idx]


def measure_speedup(reference, variant, pairs: int, budget_s: float = PAIR_BUDGET_S):
    """quant.speed.paired_speedup with as many pairs (MIN_PAIRS..pairs) as fit in ``budget_s`` after a warm-up."""
    from quant.speed import paired_speedup

    per_pair = _seconds(reference) + _seconds(variant)  # warm-up round: first calls trace / allocate
    n = int(min(pairs, max(MIN_PAIRS, budget_s // max(per_pair, 1e-9))))
    return paired_speedup(reference, variant, pairs=n, warmup=0)


def fp32_throughput(fp32, inputs, batch_sizes) -> dict[str, float]:
    """Showers/s of FP32 at each batch size: median of 3 timed calls after one warm-up."""
    out = {}
    for batch in batch_sizes:
        z, e = batch_inputs(inputs, batch)
        fp32.generate(z, e)
        out[str(batch)] = batch / float(np.median([_seconds(lambda: fp32.generate(z, e)) for _ in range(3)]))
    return out


def speed_entry(fp32, variant, inputs, batch_sizes, pairs: int) -> dict[str, dict]:
    """batch size -> Speedup fields + showers_per_s of the variant and of FP32 in those pairs."""
    out = {}
    for batch in batch_sizes:
        z, e = batch_inputs(inputs, batch)
        s = measure_speedup(lambda: fp32.generate(z, e), lambda: variant.generate(z, e), pairs)
        out[str(batch)] = s.to_dict() | {"showers_per_s": batch / s.variant_s,
                                         "fp32_showers_per_s": batch / s.reference_s}
    return out


def speed_class(speedup: dict | None) -> str | None:
    """'faster' (interval above 1), 'slower' (below 1), 'same' (interval holds 1); None if not measured."""
    if not speedup:
        return None
    if speedup["low"] > 1:
        return "faster"
    return "slower" if speedup["high"] < 1 else "same"


# ------------------------------------------------------------------ physics


def paired_entry(fp32_showers, showers, energy, requirements, title: str) -> dict:
    """Verdict, shifts in requirement units ("tolerance": the requirement) and the paper metric of a variant
    against FP32 (same inputs); ``requirements``: validation.requirements.Requirements."""
    from gan import metrics
    from validation.checks import paired_rows, paired_verdict

    rows = paired_rows(fp32_showers, showers, energy, requirements)
    verdict = paired_verdict(rows, title)
    edges = requirements.edges
    shifts = {}
    for row in rows:
        ratio = abs(row["shift"]) / row["requirement"]
        shifts[f"{row['observable']}@{row['e_low']:g}-{row['e_high']:g}"] = {
            "shift": row["shift"], "tolerance": row["requirement"], "low": row["low"], "high": row["high"],
            "status": row["status"], "ratio": math.inf if math.isnan(ratio) else ratio, "fp32": row["fp32"],
            "variant": row["variant"], "index": row["index"]}
    worst_key = max(shifts, key=lambda k: shifts[k]["ratio"])
    try:
        accuracy = metrics.accuracy_metric(fp32_showers, energy, showers, energy, edges)["total"]
    except ValueError:
        accuracy = math.inf
    return {"ok": verdict.ok, "failures": verdict.failures + verdict.unresolved, "table": verdict.table,
            "status": verdict.status, "shifts": shifts,
            "worst": worst_key, "worst_ratio": shifts[worst_key]["ratio"], "accuracy_metric_vs_fp32": accuracy}


def geant4_entry(fp32_distances: dict, distances: dict, thresholds: dict, title: str) -> dict:
    from validation.checks import check_geant4

    verdict = check_geant4(fp32_distances, distances, thresholds, title=title)
    tolerance = {k: t["threshold"] for k, t in thresholds.items()}
    return {"ok": verdict.ok, "failures": verdict.failures, "table": verdict.table, "distances": distances,
            "increase": {k: distances[k] - fp32_distances[k] for k in fp32_distances},
            "tolerance": {k: tolerance[k] for k in fp32_distances}}


def physics_summary(showers, energy, edges) -> list[dict]:
    from gan.physics import physics_summary as summary

    return summary(showers, energy, edges)


# ------------------------------------------------------------------ one model


@dataclass
class ModelContext:
    """Everything shared by the variants of one model."""

    name: str
    edges: np.ndarray
    inputs: object  # validation.samples.Inputs
    fp32: object  # the built FP32 variant
    fp32_showers: np.ndarray
    reference: object | None  # Geant4 showers (geant4 models only)
    fp32_distances: dict | None
    g4_cpu: list[dict]
    table: object  # validation.requirements.Requirements of the model
    stack: object  # known_failures.Stack
    failures: list
    sample_size: str  # 'default' or 'full', for the known-failure scopes


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def _disk_bytes(variant) -> int | None:
    from quant.base import directory_size

    with tempfile.TemporaryDirectory(prefix="report-size-") as tmp:
        try:
            variant.save(tmp)
        except Exception:  # noqa: BLE001 - a variant that cannot save still gets a report
            return None
        return directory_size(tmp)


def _known(ctx: ModelContext, variant: str, check: str) -> str | None:
    from validation.known_failures import find

    found = find(ctx.failures, ctx.name, variant, check, ctx.stack, ctx.sample_size)
    return None if found is None else f"{found.reason} (scope: {found.scope()})"


def _geant4_thresholds(n: int) -> dict | None:
    """Geant4-side thresholds for n reference events; None (no Geant4-side verdict) at a size never measured."""
    from validation import geant4_null

    try:
        return geant4_null.thresholds(geant4_null.load(), n)
    except geant4_null.NullTableError:
        return None


STATUS_WORDS = {"keeps": "keeps the physics", "breaks": "BREAKS the physics",
                "cannot_tell": "physics CANNOT TELL at this sample size"}


def physics_status(entry: dict) -> str:
    """'keeps', 'breaks' (a row beyond its requirement) or 'cannot_tell' (unresolved rows only: not a pass)."""
    if entry["keeps_physics"]:
        return "keeps"
    g4 = entry.get("geant4") or {}
    return "cannot_tell" if entry["paired"].get("status") == "cannot tell" and not g4.get("failures") else "breaks"


def run_variant(ctx: ModelContext, name: str, config: StudyConfig, cache, progress: Progress) -> tuple[dict, Sample]:
    """Build, time and check one variant of ``ctx.name``; failures become an 'error' entry, not an exception."""
    from quant import registry
    from validation.checks import geant4_distances

    entry = {"description": registry.get(name).description}
    start, variant = time.perf_counter(), None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=QUIET_BUILD)
            # built here, not in the cache: released below before the next variant is built
            variant = registry.build(name, cache.generator(ctx.name), cache.calibration(ctx.name))
        entry["build_s"] = time.perf_counter() - start
        report = variant.op_report()
        entry |= {"op_summary": report.summary(), "op_report": report.to_dict(), "size_bytes": variant.size_bytes(),
                  "disk_bytes": _disk_bytes(variant)}
        progress(f"{ctx.name}/{name}: built in {entry['build_s']:.1f} s ({entry['op_summary']})")
        start = time.perf_counter()
        showers = generate_in_chunks(variant, ctx.inputs)
        entry["generate_s"] = time.perf_counter() - start
        if config.speed:
            entry["speed"] = speed_entry(ctx.fp32, variant, ctx.inputs, config.batch_sizes, config.pairs)
        entry["op_report"] = variant.op_report().to_dict()  # again: notes added while generating (TFLite batches)
    except Exception as exc:  # noqa: BLE001 - one broken variant must not take the report down
        progress(f"{ctx.name}/{name}: FAILED: {_first_line(exc)}")
        return entry | {"error": _first_line(exc)}, None
    finally:
        del variant
        release_memory()
    entry["paired"] = paired_entry(ctx.fp32_showers, showers, ctx.inputs.energy, ctx.table,
                                   f"{ctx.name}-{name}: paired shifts vs FP32")
    entry["paired"]["known_failure"] = _known(ctx, name, "paired")
    entry["geant4"] = None
    thresholds = _geant4_thresholds(len(ctx.reference)) if ctx.reference is not None else None
    if thresholds is not None:
        distances = geant4_distances(ctx.reference.ecal, ctx.reference.energy, showers, ctx.inputs.energy, ctx.edges)
        entry["geant4"] = geant4_entry(ctx.fp32_distances, distances, thresholds,
                                       f"{ctx.name}-{name}: distance to Geant4 vs FP32's")
        entry["geant4"]["known_failure"] = _known(ctx, name, "geant4")
    entry["keeps_physics"] = entry["paired"]["ok"] and (entry["geant4"] is None or entry["geant4"]["ok"])
    entry["physics_status"] = physics_status(entry)
    entry["physics_summary"] = physics_summary(showers, ctx.inputs.energy, ctx.edges)
    _add_speed_summary(entry, config, ctx.g4_cpu)
    progress(f"{ctx.name}/{name}: {STATUS_WORDS[entry['physics_status']]} "
             f"(worst {entry['paired']['worst']}: {entry['paired']['worst_ratio']:.2f} x tolerance)"
             + (f", {entry['speedup_at_largest_batch']['median']:.2f}x FP32" if "speed" in entry else ""))
    return entry, Sample(name, showers, ctx.inputs.energy)


def _add_speed_summary(entry: dict, config: StudyConfig, g4_cpu: list[dict]) -> None:
    if "speed" not in entry:
        entry["speed_class"] = None
        return
    batch = str(max(config.batch_sizes))
    largest = entry["speed"][batch] | {"batch": int(batch)}
    entry["speedup_at_largest_batch"] = largest
    entry["speed_class"] = speed_class(largest)
    entry["speedup_vs_geant4"] = speedup_vs_geant4(g4_cpu, largest["variant_s"] / int(batch), threads_used())


def run_model(model: str, config: StudyConfig, settings, cache, progress: Progress) -> tuple[dict, list[Sample]]:
    """The FP32 reference of ``model`` and every requested variant; returns its results and figure samples."""
    from gan.pretrained import trained_energy_range
    from quant import registry
    from validation import known_failures, requirements
    from validation.checks import geant4_distances
    from validation.samples import inputs_at, load_settings, uniform_inputs

    edges = settings.edges(model)
    table = requirements.load(model)
    stale = None  # requirements and Geant4 thresholds do not depend on the model's weights
    g4_reference, g4_source = _reference(settings, config.showers)
    reference = g4_reference if model in settings.geant4_models else None
    if reference is not None:
        inputs = inputs_at("geant4", reference.energy, settings.seed + 1)
    else:
        inputs = uniform_inputs("paired", config.showers, trained_energy_range(model), settings.seed)
    g4_cpu = geant4_cpu_table(g4_reference, settings.edges("default"))
    progress(f"{model}: building FP32 and generating {len(inputs)} showers")
    fp32 = cache.variant(model, REFERENCE_VARIANT)
    fp32_showers = generate_in_chunks(fp32, inputs)
    fp32_report = fp32.op_report()
    fp32_entry = {"op_summary": fp32_report.summary(), "size_bytes": fp32.size_bytes(), "disk_bytes": _disk_bytes(fp32),
                  "description": registry.get(REFERENCE_VARIANT).description,
                  "physics_summary": physics_summary(fp32_showers, inputs.energy, edges)}
    if config.speed:
        fp32_entry["showers_per_s"] = fp32_throughput(fp32, inputs, config.batch_sizes)
        largest = max(config.batch_sizes)
        fp32_entry["speedup_vs_geant4"] = speedup_vs_geant4(
            g4_cpu, 1.0 / fp32_entry["showers_per_s"][str(largest)], threads_used())
    fp32_distances = None
    if reference is not None:
        fp32_distances = geant4_distances(reference.ecal, reference.energy, fp32_showers, inputs.energy, edges)
        fp32_entry["geant4_distances"] = fp32_distances
    sample_size = "full" if config.showers >= min(load_settings(full=True).paired_showers) else "default"
    ctx = ModelContext(model, edges, inputs, fp32, fp32_showers, reference, fp32_distances, g4_cpu, table,
                       known_failures.Stack.here(), known_failures.load(), sample_size)
    samples = ([Sample(GEANT4, reference.ecal, reference.energy)] if reference is not None else []) + \
        [Sample(FP32, fp32_showers, inputs.energy)]
    variants = {}
    for name in config.variants:
        reason = registry.unavailable_reason(name)
        if reason:
            variants[name] = {"unavailable": reason, "description": registry.get(name).description}
            progress(f"{model}/{name}: not available here ({reason})")
            continue
        variants[name], sample = run_variant(ctx, name, config, cache, progress)
        if sample is not None:
            samples.append(sample)
    result = {"edges_gev": edges.tolist(), "showers": len(inputs), "stale_tolerances": stale,
              "inputs": "at the Geant4 reference energies" if reference is not None else
              f"energies uniform in {trained_energy_range(model)[0]:g}-{trained_energy_range(model)[1]:g} GeV",
              "reference": None if reference is None else {"source": g4_source, "events": len(reference)},
              "geant4_cpu_s": g4_cpu, "fp32": fp32_entry, "variants": variants}
    return result, samples


# ------------------------------------------------------------------ the whole study


def verdict(variants: dict) -> dict[str, list[str]]:
    """Variants by category: faster/same/slower x keeps/breaks the physics; plus not run (unavailable, error)."""
    out = {f"{speed}_{physics}": [] for speed in ("faster", "same", "slower", "physics_only")
           for physics in ("keeps", "breaks", "cannot_tell")} | {"not_run": []}
    for name, entry in variants.items():
        if "paired" not in entry:
            out["not_run"].append(name)
            continue
        speed = entry.get("speed_class") or "physics_only"
        out[f"{speed}_{entry.get('physics_status') or physics_status(entry)}"].append(name)
    return out


def run_study(config: StudyConfig, progress: Progress | None = None) -> Study:
    """Run every model x variant of ``config``; returns the results (see report.results) and figure samples."""
    from report.results import SCHEMA_VERSION, to_jsonable
    from validation.samples import ShowerCache, load_settings

    progress = progress or Progress()
    settings = load_settings()
    cache = ShowerCache(settings)
    results = {"schema": SCHEMA_VERSION, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "command": " ".join(["python -m report", *sys.argv[1:]]),
               "quick": QUICK_NOTE.format(pairs=config.pairs) if config.speed else "speed not measured (--no-speed)",
               "machine": machine_facts(), "software": software_versions(),
               "settings": asdict(config) | {"seed": settings.seed,
                                             "calibration_showers": settings.calibration_showers},
               "models": {}, "verdict": {}}
    study = Study(results)
    for model in config.models:
        results["models"][model], study.samples[model] = run_model(model, config, settings, cache, progress)
        results["verdict"][model] = verdict(results["models"][model]["variants"])
    results["elapsed_s"] = progress.elapsed()
    study.results = to_jsonable(results)  # the same numbers whether rendered now or read back from results.json
    return study
