"""``auto-mixed``: the fastest per-layer precision assignment whose physics stays inside the tolerance table.

Search space: every Dense/Conv3D layer x {int8, bf16, fp32} on OpenVINO through :func:`quant.openvino.build_mixed`
(int8 and bf16 in one model exist only there; on a CPU without bf16 the space is {int8, fp32}). The layers
between them (activations, BatchNorm, upsampling) follow :func:`quant.sensitivity.full_assignment`, so the
assignment "dense_1, conv3d_1, conv3d_2 int8, conv3d_3, conv3d_4 bf16" is exactly the hand-made ``int8+bf16``.

Selection (:func:`choose_assignment`, a pure function of the solo sweeps of :mod:`quant.sensitivity`):

1. prune: a layer may not take a precision that alone moves the physics beyond tolerance (solo worst ratio > 1);
   optionally (``slower_bound``; off by default, as timings on a shared CPU would make the choice depend on the
   machine's load) nor one whose solo speed-up interval lies entirely below that bound;
2. rank the remaining assignments by estimated speed-up from a multiply-accumulate cost model (each layer's MACs
   divided by the relative throughput of its precision: fp32 1, bf16 2, int8 4, the vector-width ratios of
   AVX-512 / VNNI and of AMX): deterministic, unlike timings on a shared CPU; ties go to the smaller sum of solo
   worst ratios;
3. verify the fastest end to end with :class:`quant.objective.PhysicsObjective` (worst ratio <= 1: chosen); if
   layers that are safe alone are not safe together, demote the likeliest culprit (the reduced layer whose
   precision alone moves the failing observable most) one step and verify again (:func:`demote`; at most
   ``MAX_VERIFICATIONS`` tries, then all-FP32).

The sweeps and the choice are cached (``$CALOGAN_CACHE/sensitivity``), so building the variant again (the
validation suite builds every variant for every model) costs one NNCF quantization; the op report says what was
excluded and why, what was tried, and whether the sweep came from the cache. Deterministic for a seed: physics on
seeded inputs, seeded calibration, ranking without timings (the speed-ups it reports are measured and rough).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gan.outputs import write_json_atomic
from quant.base import OpReport, VariantError, VariantUnavailable, read_variant_file, write_variant_file
from quant.context import as_context
from quant.openvino import OPENVINO
from quant.registry import VariantSpec, register
from quant.sensitivity import FP32, SweepSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

NAME = "auto-mixed"
RUNTIME = "openvino"
PRECISION_ORDER = ("int8", "bf16", FP32)  # fastest first
RELATIVE_THROUGHPUT = {FP32: 1.0, "bf16": 2.0, "int8": 4.0}  # MACs per cycle relative to fp32
TOLERANCE = 1.0  # worst |shift| / tolerance allowed
MAX_VERIFICATIONS = 4
CHOICE_SCHEMA = 4  # bump when the selection changes
HAND_MIX_VARIANT = "int8+bf16"  # the hand-made safe mix, registered by quant.openvino
COMPARED = ("auto-mixed", "int8+bf16", "openvino-int8-tuned", "inc-int8-tuned", "openvino-int8", "bf16")


# ------------------------------------------------------------------ selection (pure)


@dataclass(frozen=True)
class Candidate:
    assignment: dict[str, str]  # every layer -> precision
    estimated_speedup: float  # MAC cost model, vs all fp32
    solo_ratio_sum: float  # sum of the solo worst ratios of its reduced layers (a rough interaction bound)


@dataclass
class Choice:
    """The chosen assignment and why."""

    assignment: dict[str, str]
    estimated_speedup: float
    verified_ratio: float | None  # end-to-end worst ratio (None: not verified)
    verified_worst: str
    explanation: list[str] = field(default_factory=list)
    tries: list[dict] = field(default_factory=list)  # {assignment, estimated_speedup, worst_ratio, worst}
    measured_speedup: list[float] | None = None  # [median, low, high] vs the runtime's FP32 (rough)
    tuning_seconds: float = 0.0  # sweeps (all of their rows, reverse included) + verification, when measured
    cache_path: str = ""  # not saved
    from_cache: bool = False  # not saved

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("cache_path"), data.pop("from_cache")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Choice:
        return cls(**data)


def format_assignment(assignment: Mapping[str, str]) -> str:
    return ", ".join(f"{layer} {precision}" for layer, precision in assignment.items())


def estimated_speedup(assignment: Mapping[str, str], macs: Mapping[str, float]) -> float:
    """Speed-up over all-fp32 predicted by the MAC cost model (layers not in ``macs`` cost nothing)."""
    fp32_cost = sum(macs.values())
    cost = sum(m / RELATIVE_THROUGHPUT[assignment.get(layer, FP32)] for layer, m in macs.items())
    return fp32_cost / cost if cost > 0 else 1.0


def allowed_precisions(solo: Mapping[str, Mapping], layers, tolerance: float = TOLERANCE,
                       slower_bound: float | None = None) -> tuple[dict[str, list[str]], list[str]]:
    """Layer -> precisions it may take (fastest first, fp32 always), and why the others were excluded.

    ``solo``: precision -> layer -> solo result (``worst_ratio``, ``worst``, ``speedup``, ``speedup_low``,
    ``speedup_high``). A layer with no solo result for a precision may not take it.
    """
    allowed, excluded = {}, []
    for layer in layers:
        allowed[layer] = []
        for precision in [p for p in PRECISION_ORDER if p in solo]:
            result = solo[precision].get(layer)
            if result is None:
                excluded.append(f"{layer} {precision}: not measured")
            elif not result.worst_ratio <= tolerance:
                excluded.append(f"{layer} {precision}: alone worst ratio {result.worst_ratio:.3g} > {tolerance:g} "
                                f"({result.worst})")
            elif slower_bound is not None and result.speedup_high < slower_bound:
                excluded.append(f"{layer} {precision}: alone clearly slower than fp32 ({result.speedup:.2f}x "
                                f"[{result.speedup_low:.2f}, {result.speedup_high:.2f}])")
            else:
                allowed[layer].append(precision)
        allowed[layer].append(FP32)
    return allowed, excluded


def rank_candidates(allowed: Mapping[str, list[str]], macs: Mapping[str, float],
                    solo: Mapping[str, Mapping]) -> list[Candidate]:
    """Every assignment ``allowed`` permits, fastest (by the MAC model) first; deterministic."""
    layers = list(allowed)
    ranked = []
    for combo in itertools.product(*(allowed[layer] for layer in layers)):
        assignment = dict(zip(layers, combo, strict=True))
        ratio_sum = sum(solo[p][layer].worst_ratio for layer, p in assignment.items() if p != FP32)
        ranked.append(Candidate(assignment, estimated_speedup(assignment, macs), ratio_sum))
    order = {p: i for i, p in enumerate(PRECISION_ORDER)}
    return sorted(ranked, key=lambda c: (-round(c.estimated_speedup, 9), c.solo_ratio_sum,
                                         [order[p] for p in c.assignment.values()]))


def choose_assignment(solo: Mapping[str, Mapping], macs: Mapping[str, float], verify: Callable | None = None,
                      tolerance: float = TOLERANCE, max_tries: int = MAX_VERIFICATIONS,
                      slower_bound: float | None = None) -> Choice:
    """The fastest assignment the solo sweeps allow that ``verify`` confirms, with its explanation.

    ``solo``: precision -> layer -> solo sweep result; ``macs``: layer -> multiply-accumulates per shower (its
    keys are the layers searched); ``verify(assignment)`` -> an object with ``worst_ratio`` and ``worst`` (e.g.
    a :class:`quant.objective.Evaluation`); None: the top-ranked candidate, unverified.
    """
    layers = list(macs)
    allowed, excluded = allowed_precisions(solo, layers, tolerance, slower_bound)
    ranked = rank_candidates(allowed, macs, solo)
    precisions = sorted({p for p in solo} | {FP32}, key=PRECISION_ORDER.index)
    lines = [f"search space: {', '.join(layers)} x {{{', '.join(precisions)}}} = "
             f"{len(precisions) ** len(layers)} assignments",
             "excluded by the solo sweep: " + ("; ".join(excluded) if excluded else "nothing"),
             f"{len(ranked)} candidates ranked by estimated speed-up (MAC cost model: relative throughput "
             + ", ".join(f"{p} {RELATIVE_THROUGHPUT[p]:g}" for p in PRECISION_ORDER) + ")"]
    if verify is None:
        top = ranked[0]
        return Choice(top.assignment, top.estimated_speedup, None, "",
                      lines + [f"chosen (not verified end to end): {format_assignment(top.assignment)}, "
                               f"estimated {top.estimated_speedup:.2f}x"])
    tries, assignment = [], ranked[0].assignment
    while assignment is not None and len(tries) < max_tries:
        speed, result = estimated_speedup(assignment, macs), verify(assignment)
        tries.append({"assignment": assignment, "estimated_speedup": speed,
                      "worst_ratio": float(result.worst_ratio), "worst": result.worst})
        ok = result.worst_ratio <= tolerance
        lines.append(f"try {len(tries)}: {format_assignment(assignment)} (estimated {speed:.2f}x): worst ratio "
                     f"{result.worst_ratio:.3g} {'<=' if ok else '>'} {tolerance:g}"
                     + ("" if ok else f" ({result.worst})"))
        if ok:
            lines.append(f"chosen: {format_assignment(assignment)}")
            return Choice(assignment, speed, float(result.worst_ratio), result.worst, lines, tries)
        assignment, why = demote(assignment, allowed, solo, macs, result.worst)
        lines.append(why)
    fallback = {layer: FP32 for layer in layers}
    lines.append(f"no assignment passed in {len(tries)} tries: chosen all fp32")
    return Choice(fallback, 1.0, None, "", lines, tries)


def solo_ratio(result, observable: str | None) -> float:
    """A layer's solo worst ratio on ``observable`` (its overall worst ratio where that is not recorded)."""
    return float(getattr(result, "ratios", {}).get(observable, result.worst_ratio))


def demote(assignment: Mapping[str, str], allowed: Mapping[str, list[str]], solo: Mapping[str, Mapping],
           macs: Mapping[str, float], failed: str = "") -> tuple[dict[str, str] | None, str]:
    """After a failed verification: the next try, one reduced layer one step slower (int8 -> its next allowed
    precision, bf16 -> fp32). Which layer: the likeliest culprit, the one whose precision alone moves the failed
    observable most (``failed``: the verification's worst, e.g. "hits_mean at 100-200 GeV: ..."); ties: the one
    whose demotion costs the least estimated speed."""
    observable = failed.split(" ")[0] if failed else None
    options = []
    for layer, precision in assignment.items():
        if precision == FP32:
            continue
        slower = allowed[layer][allowed[layer].index(precision) + 1]
        new = {**assignment, layer: slower}
        ratio = solo_ratio(solo[precision][layer], observable)
        options.append((-ratio, -estimated_speedup(new, macs), list(assignment).index(layer), layer, slower, new))
    if not options:
        return None, "nothing left to demote"
    ratio, _, _, layer, slower, new = min(options)
    what = f"on {observable}" if observable else "worst"
    return new, (f"demote {layer} {assignment[layer]} -> {slower} (largest solo ratio {what} among the reduced "
                 f"layers: {-ratio:.3g})")


# ------------------------------------------------------------------ measuring: sweeps, verification, cache


def layer_macs(generator, layers) -> dict[str, float]:
    """Multiply-accumulates per shower of each layer (Dense: in x out; Conv3D: output cells x kernel volume x
    input channels; BatchNormalization: one per value)."""
    macs = {}
    for name in layers:
        layer = generator.get_layer(name)
        kind = type(layer).__name__
        out = math.prod(int(d) for d in layer.output.shape[1:])
        if kind == "Dense":
            macs[name] = float(int(layer.input.shape[-1]) * out)
        elif kind == "Conv3D":
            macs[name] = float(out * math.prod(layer.kernel_size) * int(layer.input.shape[-1]))
        else:
            macs[name] = float(out)
    return macs


def _choice_key(sweeps, macs, settings: SweepSettings) -> dict:
    from quant.sensitivity import key_digest

    return {"schema": CHOICE_SCHEMA, "sweeps": {p: key_digest(s.key) for p, s in sorted(sweeps.items())},
            "macs": macs, "throughput": RELATIVE_THROUGHPUT, "tolerance": TOLERANCE, "max_tries": MAX_VERIFICATIONS,
            "slower_bound": None}


def _read_choice(path: Path, key: dict) -> Choice | None:
    try:
        data = json.loads(path.read_text())
        if data.get("key") != json.loads(json.dumps(key)):
            return None
        choice = Choice.from_dict(data["choice"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    choice.cache_path, choice.from_cache = str(path), True
    return choice


def _log(message: str) -> None:
    print(message, flush=True)


DEFAULT_SETTINGS = SweepSettings()  # the sweep behind every auto-mixed build
QUICK_SETTINGS = SweepSettings(showers=8, bins=1, pairs=1, speed_batch=2)  # BuildContext.quick: interface only


def select(generator, calibration, context=None, *, settings: SweepSettings = DEFAULT_SETTINGS, cache_dir=None,
           use_cache: bool = True, refresh: bool = False, log: Callable[[str], None] = _log) -> Choice:
    """Run (or read) the solo sweeps on OpenVINO, choose and verify an assignment; cached. ``context``: the
    model's :class:`~quant.context.BuildContext` (or name; None: a weight file): its requirements and energy
    range (a folded generator passes its original's). A quick context sweeps one layer on
    :data:`QUICK_SETTINGS`, without the cache."""
    from quant import sensitivity
    from quant.speed import paired_speedup

    start = time.perf_counter()
    context = as_context(context)
    runtime = sensitivity.get_runtime(RUNTIME)
    layers = runtime.layers(generator)
    if context.quick:
        settings, use_cache, layers = QUICK_SETTINGS, False, layers[:sensitivity.QUICK_LAYERS]
    swept = layers if context.quick else None
    cache_dir = sensitivity.default_cache_dir() if cache_dir is None else Path(cache_dir)
    objective = functools.cache(lambda: sensitivity.make_objective(generator, context, settings))
    sweeps = {p: sensitivity.run_sweep(generator, calibration, p, runtime, context, settings=settings,
                                       reverse=False, activations=False, cache_dir=cache_dir, use_cache=use_cache,
                                       refresh=refresh, layers=swept, objective=objective, log=log)
              for p in runtime.precisions}
    macs = layer_macs(generator, layers)
    key = _choice_key(sweeps, macs, settings)
    path = cache_dir / f"{NAME}-{sensitivity.key_digest(key)[:16]}.json"
    if use_cache and not refresh and (cached := _read_choice(path, key)) is not None:
        log(f"{NAME}: using cached choice {path}")
        return cached
    def verify(assignment):
        result = objective().evaluate_generator(runtime.build(generator, calibration, assignment).generate)
        log(f"{NAME}: verify {format_assignment(assignment)}: worst ratio {result.worst_ratio:.3g}")
        return result

    choice = choose_assignment({p: s.solo() for p, s in sweeps.items()}, macs, verify)
    chosen = runtime.build(generator, calibration, choice.assignment)
    reference = runtime.build(generator, calibration, {})
    z, energy = objective().z[:settings.speed_batch], objective().energy[:settings.speed_batch]
    speed = paired_speedup(lambda: reference.generate(z, energy), lambda: chosen.generate(z, energy),
                           pairs=settings.pairs, seed=settings.seed)
    choice.measured_speedup = [speed.median, speed.low, speed.high]
    choice.tuning_seconds = sum(s.seconds for s in sweeps.values()) + time.perf_counter() - start
    choice.explanation += [_provenance(p, s) for p, s in sweeps.items()] + runtime_notes(runtime)
    if use_cache:
        write_json_atomic(path, {"key": key, "choice": choice.to_dict()})
        choice.cache_path = str(path)
    return choice


def runtime_notes(runtime) -> list[str]:
    return [runtime.note] if runtime.note else []


def _provenance(precision: str, sweep) -> str:
    fragile = ", ".join(sweep.fragile()) or "none"
    where = f"read from cache {sweep.cache_path}" if sweep.from_cache else f"measured in {sweep.seconds:.0f} s"
    return f"{precision} solo sweep ({len(sweep.solo())} layers, fragile alone: {fragile}): {where}"


# ------------------------------------------------------------------ the variant


class AutoMixedVariant:
    """An OpenVINO generator with the chosen per-layer precisions; its op report explains the choice."""

    def __init__(self, inner, choice: Choice, name: str = NAME):
        self.inner, self.choice, self.name = inner, choice, name

    def generate(self, z, energy_gev):
        return self.inner.generate(z, energy_gev)

    def save(self, directory) -> Path:
        directory = self.inner.save(directory)
        info = {k: v for k, v in self.inner.info.items() if k != "auto_mixed"}
        write_variant_file(directory, self.name, **info, auto_mixed=self.choice.to_dict())
        return Path(directory)

    def size_bytes(self) -> int:
        return self.inner.size_bytes()

    def op_report(self) -> OpReport:
        inner = self.inner.op_report()
        return OpReport(self.name, inner.rows, inner.source, inner.notes + describe(self.choice))


def describe(c: Choice) -> list[str]:
    """The op-report notes of a choice: assignment, verification, measured speed, the reasoning, the cache."""
    notes = [f"auto-mixed assignment: {format_assignment(c.assignment)}; estimated {c.estimated_speedup:.2f}x "
             "vs fp32 (MAC model)"]
    if c.verified_ratio is not None:
        notes.append(f"verified end to end: worst ratio {c.verified_ratio:.3g} <= {TOLERANCE:g} "
                     f"({c.verified_worst})")
    if c.measured_speedup:
        m = c.measured_speedup
        notes.append(f"measured at selection: {m[0]:.2f}x [{m[1]:.2f}, {m[2]:.2f}] vs OpenVINO fp32 (rough, "
                     "shared CPU)")
    notes += c.explanation
    if c.from_cache:
        notes.append(f"choice read from cache {c.cache_path} (no sweep re-run)")
    return notes


def _inner_as(inner, name: str):
    from quant.openvino import OpenVINOGenerator

    return OpenVINOGenerator(name, inner.model, inner.info)


def build(generator, calibration, context=None, *, settings: SweepSettings = DEFAULT_SETTINGS, cache_dir=None,
          use_cache: bool = True, refresh: bool = False, log: Callable[[str], None] = _log,
          name: str = NAME) -> AutoMixedVariant:
    """Select (sweeps and choice cached) and build the auto-mixed variant (called ``name``) for the model of
    ``context`` (:func:`select`)."""
    from quant import sensitivity

    choice = select(generator, calibration, context, settings=settings, cache_dir=cache_dir, use_cache=use_cache,
                    refresh=refresh, log=log)
    inner = sensitivity.get_runtime(RUNTIME).build(generator, calibration, choice.assignment)
    return AutoMixedVariant(_inner_as(inner, name), choice, name)


def load(directory, name: str = NAME) -> AutoMixedVariant:
    from quant import openvino

    info = read_variant_file(directory)
    if info.get("variant") != name or "auto_mixed" not in info:
        raise VariantError(f"{directory}: holds variant '{info.get('variant')}', not '{name}'")
    return AutoMixedVariant(openvino.load(directory, name=name), Choice.from_dict(info["auto_mixed"]), name)


def compare(generator, calibration, context=None, names=COMPARED, *, settings: SweepSettings = DEFAULT_SETTINGS,
            cache_dir=None, log: Callable[[str], None] = _log) -> list[dict]:
    """Each registered, available variant of ``names`` on the same objective (the one the choice was made on):
    worst ratio, accuracy metric, speed-up vs the Keras fp32 reference (rough), and its build (tuning) seconds;
    plus auto-mixed vs the hand mix. Timing is the project's one policy (:func:`quant.speed.warmed_speedup`); the
    study of variants in the report and the suites is :mod:`study` (above quant, which cannot import it)."""
    from quant import fp32, registry, sensitivity
    from quant.speed import warmed_speedup

    context = as_context(context)
    reference = fp32.build(generator)
    objective = sensitivity.make_objective(generator, context, settings, reference.generate)
    z, energy = objective.z[:settings.speed_batch], objective.energy[:settings.speed_batch]
    rows, built = [], {}
    for name in names:
        reason = "not registered" if name not in registry.names() else registry.unavailable_reason(name)
        if reason:
            rows.append({"variant": name, "skipped": reason})
            continue
        start = time.perf_counter()
        variant = built[name] = build(generator, calibration, context, settings=settings, cache_dir=cache_dir,
                                      log=log) if name == NAME else registry.build(name, generator, calibration,
                                                                                   context)
        seconds = time.perf_counter() - start
        result = objective.evaluate_generator(variant.generate)
        speed = warmed_speedup(lambda: reference.generate(z, energy), lambda v=variant: v.generate(z, energy),
                               settings.pairs, seed=settings.seed)
        row = {"variant": name, "worst_ratio": result.worst_ratio, "worst": result.worst,
               "accuracy_metric": result.accuracy_metric, "speedup": [speed.median, speed.low, speed.high],
               "build_seconds": seconds}
        if isinstance(variant, AutoMixedVariant):
            row["tuning_seconds"] = variant.choice.tuning_seconds
            row["choice_cached"] = variant.choice.from_cache
        rows.append(row)
        log(f"compare: {name}: worst ratio {result.worst_ratio:.3g}, {speed.format()}, build {seconds:.0f} s")
    if NAME in built and HAND_MIX_VARIANT in built:
        auto, hand = built[NAME], built[HAND_MIX_VARIANT]
        speed = warmed_speedup(lambda: hand.generate(z, energy), lambda: auto.generate(z, energy),
                               settings.pairs, seed=settings.seed)
        rows.append({"variant": f"{NAME} vs {HAND_MIX_VARIANT}", "speedup": [speed.median, speed.low, speed.high]})
    return rows


def format_comparison(rows) -> str:
    """A markdown table of :func:`compare` rows."""
    lines = ["| variant | worst ratio | verdict | accuracy metric | speed-up vs Keras fp32 (rough) | build/tuning s |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['variant']} | - | skipped: {r['skipped']} | - | - | - |")
        elif "worst_ratio" not in r:
            m = r["speedup"]
            lines.append(f"| {r['variant']} | - | - | - | {m[0]:.2f}x [{m[1]:.2f}, {m[2]:.2f}] | - |")
        else:
            m = r["speedup"]
            tuning = f"{r['build_seconds']:.0f}"
            if "tuning_seconds" in r:
                tuning += f" (sweeps+verify {r['tuning_seconds']:.0f}{', cached' if r['choice_cached'] else ''})"
            verdict = "inside" if r["worst_ratio"] <= TOLERANCE else "outside"
            lines.append(f"| {r['variant']} | {r['worst_ratio']:.3g} | {verdict} | {r['accuracy_metric']:.3g} | "
                         f"{m[0]:.2f}x [{m[1]:.2f}, {m[2]:.2f}] | {tuning} |")
    return "\n".join(lines)


def _check() -> None:
    for module in ("openvino", "nncf"):
        if importlib.util.find_spec(module) is None:
            raise VariantUnavailable(NAME, f"{module} not installed")


register(VariantSpec(NAME, "per-layer int8/bf16/fp32 on OpenVINO chosen from the layer-wise sensitivity sweep "
                     "(fastest inside the tolerance table; sweep cached)", OPENVINO,
                     build, load, _check, slow_build=True))
