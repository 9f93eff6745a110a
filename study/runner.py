"""The study: for each model and variant, build it, read its op coverage and size, time it against FP32, generate
showers for the same inputs as FP32 and check the physics (paired, and against Geant4). Typed results
(:mod:`study.results`) go to the report, which only renders them.

Pieces reused by the suites and the report alike: :func:`measure_speed` (warm-up once, interleaved pairs:
:func:`quant.speed.warmed_speedup`), :func:`paired_entry` / :func:`geant4_entry` (the verdict package's checks),
:func:`check_physics`, and :class:`study.session.Session` (built once, released after use). The speed-ups here
are quick measurements (few interleaved pairs, small batches); ``pytest benchmarks`` is the careful one.

The paired verdict grows as the validation suite's does (verdict.checks.paired_sequential): a variant that
"cannot tell" at ``--showers`` gets the next stages of study/settings.toml [paired] (100 -> 400 -> 1000; its
``showers_full`` from 1000 up), the same seeded inputs extended; FP32's extra showers are made once per model
(:meth:`ModelContext.fp32_paired`), the variant's while it is built (:func:`paired_grown`). The Geant4-side
verdict stays at the reference's ``--showers`` events.

Memory: each variant is built, measured and released (:meth:`Session.use`) before the next one is built, and
showers are generated in chunks, so the peak is the largest single variant plus what the models share (the FP32
reference, inputs, samples), not the sum of all variants.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from study.inputs import Inputs, inputs_at, uniform_inputs
from study.results import (  # noqa: F401 - physics_status, speed_class: part of the runner's interface
    FP32,
    GEANT4,
    STATUS_WORDS,
    PhysicsResult,
    Sample,
    SpeedResult,
    VariantResult,
    physics_status,
    speed_class,
)
from study.session import REFERENCE_VARIANT, Session, generate_in_chunks

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_SHOWERS = 100  # per model: paired showers (and Geant4 reference events for the default model)
DEFAULT_BATCH_SIZES = (1, 32)
DEFAULT_PAIRS = 7  # most interleaved FP32/variant pairs per speed measurement
MIN_PAIRS = 3
MEMORY_BUDGET_BYTES = 3 * 10**9  # the main job's peak resident memory (README; tests/test_report_memory.py)
PAIR_BUDGET_S = 3.0  # seconds of pairs per (variant, batch size); slow variants get MIN_PAIRS
QUICK_NOTE = ("speed-ups here are quick measurements: {pairs} interleaved FP32/variant pairs at most per batch size "
              "(3 s each), median with 95% bootstrap interval, on a machine others may share; `pytest benchmarks` is "
              "the careful measurement")
# Variants whose build tunes or sweeps for minutes (accuracy-driven tuning, a layer-wise sensitivity sweep): run
# only when named in --variants (or with --variants all), so the default report stays within a few minutes.
SLOW_BUILD_REASON = "its build tunes for minutes; name it in --variants (or --variants all) to include it"


class StudyError(ValueError):
    """A study that cannot run as asked (unknown variant or model); the message says which and what exists."""


@dataclass(frozen=True)
class StudyConfig:
    models: tuple[str, ...]
    variants: tuple[str, ...]  # fp32 is always built as the reference and not listed here
    showers: int = DEFAULT_SHOWERS  # the first paired stage (and the Geant4 reference events)
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    speed: bool = True
    pairs: int = DEFAULT_PAIRS
    left_out: tuple[str, ...] = ()  # registered variants not run by default (quant.registry.slow_builds)
    max_showers: int | None = None  # cap on the paired stages an unresolved verdict grows through (None: none)


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
    """'default', plus 'cern2017' where its weights are found (shared folder, cache, $CALOGAN_CERN_WEIGHTS)."""
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


# ------------------------------------------------------------------ speed


def pairs_within(budget_s: float, most: int, least: int = MIN_PAIRS):
    """The pair count policy of a quick measurement: as many pairs (least..most) as fit in ``budget_s``, given
    the seconds of one timed pair (for :func:`quant.speed.warmed_speedup`)."""
    return lambda pair_s: int(min(most, max(least, budget_s // max(pair_s, 1e-9))))


def measure_speed(fp32, variant, inputs: Inputs, batch_sizes, pairs) -> dict[int, SpeedResult]:
    """Batch size -> :class:`SpeedResult` of ``variant`` against ``fp32`` on the first inputs: one warm-up, then
    interleaved pairs (``pairs``: a number or a function of one pair's seconds, e.g. :func:`pairs_within`)."""
    from quant.speed import warmed_speedup

    out = {}
    for batch in batch_sizes:
        z, e = inputs.batch(batch)
        speedup = warmed_speedup(lambda z=z, e=e: fp32.generate(z, e), lambda z=z, e=e: variant.generate(z, e), pairs)
        out[int(batch)] = SpeedResult.from_speedup(int(batch), speedup)
    return out


def reference_speed(fp32, inputs: Inputs, batch_sizes, calls: int = 3) -> dict[int, SpeedResult]:
    """Batch size -> showers/s of FP32 alone: median of ``calls`` timed calls after one warm-up."""
    from quant.speed import seconds

    out = {}
    for batch in batch_sizes:
        z, e = inputs.batch(batch)
        fp32.generate(z, e)
        out[int(batch)] = SpeedResult(int(batch), None,
                                      batch / float(np.median([seconds(lambda z=z, e=e: fp32.generate(z, e))
                                                               for _ in range(calls)])))
    return out


def threads_used() -> int:
    """CPUs this process may run on (TensorFlow, OpenVINO and TFLite use them all)."""
    from gan.machine import usable_cpus

    return usable_cpus()


# ------------------------------------------------------------------ physics


def paired_entry(fp32_showers, showers, energy, requirements, title: str) -> dict:
    """Verdict, shifts in requirement units ("tolerance": the requirement) and the paper metric of a variant
    against FP32 (same inputs); ``requirements``: verdict.requirements.Requirements."""
    from gan import metrics
    from verdict.checks import paired_rows, paired_verdict

    rows = paired_rows(fp32_showers, showers, energy, requirements)
    verdict = paired_verdict(rows, title)
    shifts = {}
    for row in rows:
        ratio = abs(row["shift"]) / row["requirement"]
        shifts[f"{row['observable']}@{row['e_low']:g}-{row['e_high']:g}"] = {
            "shift": row["shift"], "tolerance": row["requirement"], "low": row["low"], "high": row["high"],
            "status": row["status"], "ratio": math.inf if math.isnan(ratio) else ratio, "fp32": row["fp32"],
            "variant": row["variant"], "index": row["index"]}
    worst_key = max(shifts, key=lambda k: shifts[k]["ratio"])
    try:
        accuracy = metrics.accuracy_metric(fp32_showers, energy, showers, energy, requirements.edges)["total"]
    except ValueError:
        accuracy = math.inf
    return {"ok": verdict.ok, "failures": verdict.failures + verdict.unresolved, "table": verdict.table,
            "status": verdict.status, "shifts": shifts,
            "worst": worst_key, "worst_ratio": shifts[worst_key]["ratio"], "accuracy_metric_vs_fp32": accuracy}


def geant4_entry(fp32_distances: dict, distances: dict, thresholds: dict, title: str) -> dict:
    """Geant4-side verdict of a variant: its distances to Geant4 against FP32's, beyond Geant4's own null."""
    from verdict.checks import check_geant4

    verdict = check_geant4(fp32_distances, distances, thresholds, title=title)
    tolerance = {k: t["threshold"] for k, t in thresholds.items()}
    return {"ok": verdict.ok, "failures": verdict.failures, "table": verdict.table, "distances": distances,
            "increase": {k: distances[k] - fp32_distances[k] for k in fp32_distances},
            "tolerance": {k: tolerance[k] for k in fp32_distances}}


def geant4_thresholds(n: int) -> dict | None:
    """Geant4-side thresholds for n reference events; None (no Geant4-side verdict) at a size never measured."""
    from verdict import geant4_null

    try:
        return geant4_null.thresholds(geant4_null.load(), n)
    except geant4_null.NullTableError:
        return None


# ------------------------------------------------------------------ one model


@dataclass
class ModelContext:
    """Everything shared by the variants of one model."""

    name: str
    edges: np.ndarray
    inputs: Inputs
    fp32: object  # the built FP32 variant
    fp32_showers: np.ndarray
    reference: object | None  # Geant4 showers (geant4 models only)
    fp32_distances: dict | None
    g4_cpu: list[dict]
    table: object  # verdict.requirements.Requirements of the model
    here: object  # gan.machine.Here
    failures: list
    sample_size: str  # 'default' or 'full', for the known-failure scopes
    paired_stages: tuple[int, ...] = ()  # larger paired sizes, tried in turn while the verdict is "cannot tell"
    grown_inputs: Callable[[int], Inputs] | None = None  # n -> the first n paired inputs (extending ``inputs``)
    _grown: Inputs | None = field(default=None, init=False, repr=False)  # the largest stage's inputs, drawn once
    _fp32_more: np.ndarray | None = field(default=None, init=False, repr=False)  # FP32 showers beyond ``fp32_showers``

    def paired_inputs(self, n: int) -> Inputs:
        """The first ``n`` paired inputs: ``inputs`` itself, or a prefix of the largest stage's inputs (drawn once,
        checked to begin with ``inputs``, so every stage extends the smaller one event by event)."""
        if n <= len(self.inputs):
            return self.inputs if n == len(self.inputs) else Inputs(self.inputs.name, self.inputs.z[:n],
                                                                     self.inputs.energy[:n])
        if self._grown is None:
            if self.grown_inputs is None:
                raise ValueError(f"{self.name}: no paired inputs beyond {len(self.inputs)}")
            grown = self.grown_inputs(max(self.paired_stages))
            k = len(self.inputs)
            if not (np.array_equal(grown.z[:k], self.inputs.z) and np.array_equal(grown.energy[:k],
                                                                                  self.inputs.energy)):
                raise ValueError(f"{self.name}: the grown paired inputs do not extend the first {k}")
            self._grown = grown
        if n > len(self._grown):
            raise ValueError(f"{self.name}: {n} paired inputs asked, {len(self._grown)} drawn")
        return Inputs(self._grown.name, self._grown.z[:n], self._grown.energy[:n])

    def fp32_paired(self, n: int) -> np.ndarray:
        """FP32 showers of the first ``n`` paired inputs; those beyond ``fp32_showers`` are generated once per model
        (kept here for every variant) and only as far as asked."""
        base = len(self.fp32_showers)
        if n <= base:
            return self.fp32_showers[:n]
        more = self._fp32_more if self._fp32_more is not None else np.empty((0, 25, 25, 25), np.float32)
        if base + len(more) < n:
            inputs = self.paired_inputs(n)
            extra = generate_in_chunks(self.fp32, inputs.z[base + len(more):], inputs.energy[base + len(more):])
            more = self._fp32_more = np.concatenate([more, extra])
        return np.concatenate([self.fp32_showers, more[:n - base]])

    def known(self, variant: str, check: str) -> str | None:
        """The registered known failure of ``variant`` for ``check`` on this stack, worded, or None."""
        from verdict.known_failures import find

        found = find(self.failures, self.name, variant, check, self.here, self.sample_size)
        return None if found is None else f"{found.reason} (scope: {found.scope()})"


def paired_grown(ctx: ModelContext, name: str, showers: np.ndarray, variant=None, progress=None) -> dict:
    """The paired entry of ``showers`` (the variant's, for ``ctx.inputs``) against FP32, grown as the validation
    suite grows it (verdict.checks.paired_sequential): while it is "cannot tell" and ``variant`` (still built) is
    given, the next of ``ctx.paired_stages``: the variant's showers for the extra inputs, FP32's from the model's
    cache. A clear pass or failure stops at once. ``showers`` / ``stages`` in the entry: the sample size that
    decided it and every size tried."""
    from verdict.checks import UNRESOLVED

    title = f"{ctx.name}-{name}: paired shifts vs FP32"
    entry = paired_entry(ctx.fp32_showers, showers, ctx.inputs.energy, ctx.table, title)
    stages = [len(showers)]
    grown = showers
    for n in ctx.paired_stages:
        if variant is None or entry["status"] != UNRESOLVED:
            break
        if n <= len(grown):
            continue
        if progress is not None:
            progress(f"{ctx.name}/{name}: paired cannot tell at {len(grown)} showers; growing to {n}")
        inputs = ctx.paired_inputs(n)
        grown = np.concatenate([grown, generate_in_chunks(variant, inputs.z[len(grown):], inputs.energy[len(grown):])])
        entry = paired_entry(ctx.fp32_paired(n), grown, inputs.energy, ctx.table, title)
        stages.append(n)
    return entry | {"showers": stages[-1], "stages": stages}


def check_physics(ctx: ModelContext, name: str, showers: np.ndarray, variant=None,
                  progress=None) -> PhysicsResult:
    """Paired verdict of ``showers`` against the model's FP32 ones (grown through ``ctx.paired_stages`` while
    unresolved, when the built ``variant`` is given: :func:`paired_grown`), and the Geant4-side one where it
    applies (on ``showers``, the reference's size)."""
    from verdict.checks import geant4_distances

    paired = paired_grown(ctx, name, showers, variant, progress)
    paired["known_failure"] = ctx.known(name, "paired")
    geant4 = None
    thresholds = geant4_thresholds(len(ctx.reference)) if ctx.reference is not None else None
    if thresholds is not None:
        distances = geant4_distances(ctx.reference.ecal, ctx.reference.energy, showers, ctx.inputs.energy, ctx.edges)
        geant4 = geant4_entry(ctx.fp32_distances, distances, thresholds,
                              f"{ctx.name}-{name}: distance to Geant4 vs FP32's")
        geant4["known_failure"] = ctx.known(name, "geant4")
    return PhysicsResult(paired, geant4)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def disk_bytes(variant) -> int | None:
    """Bytes of the variant as saved (None if it cannot be saved)."""
    from quant.base import directory_size

    with tempfile.TemporaryDirectory(prefix="study-size-") as tmp:
        try:
            variant.save(tmp)
        except Exception:  # noqa: BLE001 - a variant that cannot save still gets a report
            return None
        return directory_size(tmp)


def _geant4_speedup(g4_cpu: list[dict], seconds_per_shower: float) -> list[dict]:
    from gan.physics import speedup_over_geant4

    return speedup_over_geant4(g4_cpu, seconds_per_shower, threads_used())


def run_variant(session: Session, ctx: ModelContext, name: str, config: StudyConfig,
                progress: Progress) -> tuple[VariantResult, Sample | None]:
    """Build, time and check one variant of ``ctx.name``, then release it; failures become a result with an
    ``error``, not an exception."""
    from gan.physics import physics_summary
    from quant import registry

    result = VariantResult(ctx.name, name, registry.get(name).description)
    reason = registry.unavailable_reason(name)
    if reason:
        progress(f"{ctx.name}/{name}: not available here ({reason})")
        result.unavailable = reason
        return result, None
    try:
        with session.use(ctx.name, name) as built:
            variant = built.variant
            result.build_s = built.build_s
            report = variant.op_report()
            result.op_summary, result.size_bytes = report.summary(), variant.size_bytes()
            result.op_report, result.disk_bytes = report.to_dict(), disk_bytes(variant)
            progress(f"{ctx.name}/{name}: built in {result.build_s:.1f} s ({result.op_summary})")
            start = time.perf_counter()
            showers = generate_in_chunks(variant, ctx.inputs.z, ctx.inputs.energy)
            result.generate_s = time.perf_counter() - start
            if config.speed:
                result.speed = measure_speed(ctx.fp32, variant, ctx.inputs, config.batch_sizes,
                                             pairs_within(PAIR_BUDGET_S, config.pairs))
            result.op_report = variant.op_report().to_dict()  # again: notes added while generating (TFLite)
            # while built: an unresolved paired verdict grows its sample with this variant's extra showers
            result.physics = check_physics(ctx, name, showers, variant, progress)
            del variant
    except Exception as exc:  # noqa: BLE001 - one broken variant must not take the report down
        progress(f"{ctx.name}/{name}: FAILED: {_first_line(exc)}")
        result.error = _first_line(exc)
        return result, None
    result.physics_summary = physics_summary(showers, ctx.inputs.energy, ctx.edges)
    largest = result.largest_batch
    if largest is not None:
        result.speedup_vs_geant4 = _geant4_speedup(ctx.g4_cpu, largest.seconds_per_batch / largest.batch)
    paired = result.physics.paired
    progress(f"{ctx.name}/{name}: {STATUS_WORDS[result.physics.status]} (paired at {paired['showers']} showers; "
             f"worst {paired['worst']}: {paired['worst_ratio']:.2f} x tolerance)"
             + (f", {largest.speedup.median:.2f}x FP32" if largest is not None else ""))
    return result, Sample(name, showers, ctx.inputs.energy)


def reference_events(settings, n: int):
    """(Geant4 showers, where from): the shared file's held-out tail where present (first n), else embedded."""
    from gan.data import count_showers, read_showers
    from gan.pretrained import DEFAULT_REFERENCE, shared_data_file

    shared = shared_data_file()
    if shared.is_file():
        start = count_showers(shared) - settings.held_out_tail
        return read_showers(shared, start=start, max_events=n), \
            f"{shared.name}: first {n} of the {settings.held_out_tail} held-out events"
    return read_showers(DEFAULT_REFERENCE, max_events=n), f"{DEFAULT_REFERENCE.name} (embedded): first {n} events"


def reference_energies(settings, n: int) -> np.ndarray:
    """Primary energies (GeV) of the first ``n`` (at most) events :func:`reference_events` reads, without ECAL: the
    paired inputs of a Geant4 model grown beyond the reference's size."""
    from gan.data import count_showers, read_energies
    from gan.pretrained import DEFAULT_REFERENCE, shared_data_file

    shared = shared_data_file()
    if shared.is_file():
        start = count_showers(shared) - settings.held_out_tail
        return read_energies(shared)[start:start + n]
    return read_energies(DEFAULT_REFERENCE)[:n]


def paired_stages(config: StudyConfig, sample_size: str) -> tuple[int, ...]:
    """The paired sizes above ``config.showers`` (at most ``config.max_showers``) an unresolved verdict grows
    through: study/settings.toml's [paired] stages, its ``showers_full`` ones when the first stage is that large."""
    from study.settings import load_settings

    stages = load_settings(full=sample_size == "full").paired_showers
    cap = config.max_showers if config.max_showers is not None else max(stages)
    return tuple(n for n in stages if config.showers < n <= cap)


def geant4_cpu(reference, edges) -> list[dict]:
    """Median Geant4 CPU seconds per event per energy bin of ``reference`` (gan.physics.geant4_cpu_per_bin), or
    [] when it carries no timing."""
    from gan.physics import geant4_cpu_per_bin

    if reference.g4_cpu_s is None:
        return []
    return geant4_cpu_per_bin(reference.energy, reference.g4_cpu_s, edges)


def run_model(session: Session, model: str, config: StudyConfig, settings, progress: Progress,
              sample_size: str = "default", stages: tuple[int, ...] = ()) -> tuple[dict, list[Sample]]:
    """The FP32 reference of ``model`` and every requested variant; returns its results and figure samples.
    ``settings``: study.settings.Settings (seeds, energy bins, Geant4 models, held-out events)."""
    from gan.machine import Here
    from gan.physics import physics_summary
    from gan.pretrained import trained_energy_range
    from quant import registry
    from verdict import known_failures, requirements
    from verdict.checks import geant4_distances

    edges = settings.edges(model)
    table = requirements.load(model)
    g4_reference, g4_source = reference_events(settings, config.showers)
    reference = g4_reference if model in settings.geant4_models else None
    if reference is not None:
        inputs = inputs_at("geant4", reference.energy, settings.seed + 1)

        def grown_inputs(n):  # seeded latents are prefix-stable: the first inputs are the reference's
            return inputs_at("geant4", reference_energies(settings, n), settings.seed + 1)
        available = len(reference_energies(settings, max(stages))) if stages else 0  # the embedded file: 500
        stages = tuple(n for n in dict.fromkeys(min(n, available) for n in stages) if n > len(inputs))
    else:
        inputs = uniform_inputs("paired", config.showers, trained_energy_range(model), settings.seed)

        def grown_inputs(n):  # z and energies come from separate prefix-stable streams
            return uniform_inputs("paired", n, trained_energy_range(model), settings.seed)
    g4_cpu = geant4_cpu(g4_reference, settings.edges("default"))
    progress(f"{model}: building FP32 and generating {len(inputs)} showers")
    fp32 = session.variant(model, REFERENCE_VARIANT)
    fp32_showers = generate_in_chunks(fp32, inputs.z, inputs.energy)
    fp32_report = fp32.op_report()
    fp32_entry = {"op_summary": fp32_report.summary(), "size_bytes": fp32.size_bytes(), "disk_bytes": disk_bytes(fp32),
                  "description": registry.get(REFERENCE_VARIANT).description,
                  "physics_summary": physics_summary(fp32_showers, inputs.energy, edges)}
    if config.speed:
        speed = reference_speed(fp32, inputs, config.batch_sizes)
        fp32_entry["showers_per_s"] = {str(b): s.showers_per_s for b, s in speed.items()}
        largest = speed[max(speed)]
        fp32_entry["speedup_vs_geant4"] = _geant4_speedup(g4_cpu, largest.seconds_per_batch / largest.batch)
    fp32_distances = None
    if reference is not None:
        fp32_distances = geant4_distances(reference.ecal, reference.energy, fp32_showers, inputs.energy, edges)
        fp32_entry["geant4_distances"] = fp32_distances
    ctx = ModelContext(model, edges, inputs, fp32, fp32_showers, reference, fp32_distances, g4_cpu, table,
                       Here.now(), known_failures.load(), sample_size, stages, grown_inputs)
    samples = ([Sample(GEANT4, reference.ecal, reference.energy)] if reference is not None else []) + \
        [Sample(FP32, fp32_showers, inputs.energy)]
    variants = {}
    for name in config.variants:
        result, sample = run_variant(session, ctx, name, config, progress)
        variants[name] = result.to_dict()
        if sample is not None:
            samples.append(sample)
    ctx = None  # with it the grown FP32 showers
    session.release(model)  # the FP32 reference: the next model starts from the shared baseline
    low, high = trained_energy_range(model)
    out = {"edges_gev": edges.tolist(), "showers": len(inputs), "paired_stages": list(stages),
           "stale_tolerances": None,
           "inputs": "at the Geant4 reference energies" if reference is not None else
           f"energies uniform in {low:g}-{high:g} GeV",
           "reference": None if reference is None else {"source": g4_source, "events": len(reference)},
           "geant4_cpu_s": g4_cpu, "fp32": fp32_entry, "variants": variants}
    return out, samples


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


def machine_facts() -> dict:
    """The CPU, its instruction sets that matter here, and the threads used (from gan.machine)."""
    import os
    import platform

    from gan.machine import cpu_model, isa_flags

    return {"cpu_model": cpu_model(), "isa_flags": isa_flags(), "logical_cpus": os.cpu_count(),
            "threads_used": threads_used(), "platform": platform.platform()}


def software_versions(packages) -> dict:
    """Python's version and that of each import name of ``packages`` (None: not installed)."""
    import platform

    from gan.machine import package_version

    return {"python": platform.python_version()} | {p: package_version(p) for p in packages}


def run_study(config: StudyConfig, progress: Progress | None = None, packages=(), settings=None) -> Study:
    """Run every model x variant of ``config``; returns the results (the report's results.json entries, not yet
    JSON-normalised) and the figure samples. ``packages``: import names whose versions the results state;
    ``settings``: study.settings.Settings (seeds, energy bins, Geant4 models; default: settings.toml's)."""
    from study.settings import load_settings

    settings = settings or load_settings()
    # the known-failure scope the sample size falls in
    sample_size = "full" if config.showers >= min(load_settings(full=True).paired_showers) else "default"
    progress = progress or Progress()
    session = Session(settings.calibration_showers, settings.calibration_seed)
    results = {"created": datetime.now(UTC).isoformat(timespec="seconds"),
               "command": " ".join(["python -m report", *sys.argv[1:]]),
               "quick": QUICK_NOTE.format(pairs=config.pairs) if config.speed else "speed not measured (--no-speed)",
               "machine": machine_facts(), "software": software_versions(packages),
               "settings": asdict(config) | {"seed": settings.seed,
                                             "calibration_showers": settings.calibration_showers},
               "models": {}, "verdict": {}}
    study = Study(results)
    for model in config.models:
        results["models"][model], study.samples[model] = run_model(session, model, config, settings, progress,
                                                                   sample_size, paired_stages(config, sample_size))
        results["verdict"][model] = verdict(results["models"][model]["variants"])
    results["elapsed_s"] = progress.elapsed()
    return study
