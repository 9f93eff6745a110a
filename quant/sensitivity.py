"""Layer-wise precision sensitivity: which layer breaks the physics in int8 or bf16, and what each one buys.

For a generator and a target precision, on a runtime with per-layer precision control, every layer (Dense, each
Conv3D, optionally BatchNormalization) is run alone in the target precision with the rest in FP32 (the *solo*
sweep), and every layer is put back alone into FP32 with the rest reduced (the *reverse* sweep). Each assignment
is scored with :class:`quant.objective.PhysicsObjective` against the FP32 Keras generator's showers for the same
seeded inputs (paired shifts per energy bin in tolerance units: worst ratio <= 1 means inside the tolerance
table; plus the paper's accuracy metric) and timed against the same runtime's all-FP32 model with
:func:`quant.speed.paired_speedup` (rough on a shared CPU). Activation range statistics of each layer's input
(:mod:`quant.activations`) say why a layer is fragile.

Runtimes with per-layer control (:func:`get_runtime`) are declared by their variant family
(:class:`quant.registry.Family`, ``per_layer``): ``openvino`` (:func:`quant.openvino.build_mixed`: int8 per layer
through NNCF's ignored scope, bf16 per layer through the bf16 hint with f32 layers kept f32) and ``keras`` (bf16
per layer through Keras dtype policies). BatchNormalization can be swept for bf16 on both. Int8 and bf16 in one
model exist only on OpenVINO. A family without per-layer control (TensorFlow Lite, INC) says why, as a clear
:class:`~quant.base.VariantUnavailable`.

Results are cached as JSON under ``$CALOGAN_CACHE/sensitivity`` (or ``cache_dir``), keyed by the sha256 of the
generator's weights and of the calibration inputs, the runtime and its builder, the target, the tolerances and
the sample settings, so the report and the ``auto-mixed`` build reuse a sweep instead of redoing it.

    sweep = run_sweep(generator, calibration, "int8", "openvino", BuildContext.for_model("cern2017"))
    cached_results("cern2017", "int8")            # the cached sweep of the CLI's defaults, or None

The table, figure and report files are :mod:`quant.sensitivity_report`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gan.outputs import write_json_atomic
from quant.activations import COMPUTE, WEIGHTED, ActivationStats
from quant.base import VariantError, VariantUnavailable, array_sha256, weights_sha256
from quant.context import BuildContext, as_context
from quant.objective import DEFAULT_SEED, DEFAULT_SHOWERS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

FP32 = "fp32"
TARGETS = ("int8", "bf16")
SOLO, REVERSE, BASELINE = "solo", "reverse", "baseline"
NO_LAYER, ALL_LAYERS = "(none)", "(all)"
DEFAULT_BINS = 4
DEFAULT_PAIRS = 5  # speed: interleaved timing pairs per assignment
SPEED_BATCH = 32  # speed: showers per timed call
CALIBRATION_N, CALIBRATION_SEED = 64, 0  # as the validation suite builds variants (study/settings.toml)
SCHEMA = 1  # bump when the cached JSON changes meaning
CACHE_SUBDIR = "sensitivity"
MIXED_NAME = "sensitivity-mixed"
MIXED_BF16 = "mixed_bfloat16"
QUICK_LAYERS = 1  # a quick build's sweep (BuildContext.quick): the first layer only


# ------------------------------------------------------------------ runtimes with per-layer control


@dataclass(frozen=True)
class Runtime:
    """A runtime that sets precision layer by layer.

    ``build(generator, calibration, assignment)`` returns an object with ``generate(z, energy_gev)``;
    ``assignment`` maps layer names to ``"int8"``, ``"bf16"`` or ``"fp32"``; the layers it does not name follow
    :func:`full_assignment`.
    """

    name: str
    precisions: tuple[str, ...]  # reduced precisions it can set per layer
    build: Callable
    builder: str = ""  # which builder implements it (part of the cache key)
    note: str = ""

    def layers(self, generator, include_batchnorm: bool = False, precision: str = "bf16") -> list[str]:
        """The layers swept: Dense and Conv3D, and BatchNormalization for a float target if asked."""
        kinds = WEIGHTED if include_batchnorm and precision != "int8" else COMPUTE
        return [layer.name for layer in generator.layers if type(layer).__name__ in kinds]


def full_assignment(generator, assignment: Mapping[str, str]) -> dict[str, str]:
    """Every layer with ops -> its precision, from the precisions of the swept layers in ``assignment``.

    A Dense or Conv3D layer not in ``assignment`` is fp32. Any other layer not in it (activation, reshape,
    upsampling, BatchNorm unless swept) belongs with the layer before it: bf16 after a bf16 layer, fp32 after an
    fp32 one, and after an int8 layer bf16 if the model has bf16 layers at all, else fp32 (dequantized int8
    outputs feed the same float path). An UpSampling3D right before an int8 Conv3D is left out: its input is that
    convolution's int8 input (:func:`quant.openvino.resolve_precisions`).
    """
    layers = [(layer.name, type(layer).__name__) for layer in generator.layers
              if type(layer).__name__ not in ("InputLayer", "ZeroPadding3D")]
    any_bf16 = "bf16" in assignment.values()
    full, current = {}, FP32
    for i, (name, kind) in enumerate(layers):
        if name in assignment or kind in COMPUTE:
            full[name] = current = assignment.get(name, FP32)
            continue
        if kind == "UpSampling3D":
            following = next((n for n, k in layers[i + 1:] if k in COMPUTE), None)
            if assignment.get(following) == "int8":
                continue
        full[name] = "bf16" if current == "bf16" or (current == "int8" and any_bf16) else FP32
    return full


def require_modules(runtime: str, *modules: str) -> None:
    """VariantUnavailable (for ``runtime``) unless every module in ``modules`` can be imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise VariantUnavailable(runtime, f"{module} not installed")


def get_runtime(name: str) -> Runtime:
    """The per-layer runtime of variant family ``name`` (e.g. 'openvino', 'keras'); VariantUnavailable where it
    cannot run here or has no per-layer control."""
    from quant import registry

    families = registry.families()
    if name not in families:
        known = ", ".join(f for f, family in families.items() if family.per_layer)
        raise VariantError(f"unknown runtime '{name}'; runtimes with per-layer control: {known}")
    family = families[name]
    if family.per_layer is None:
        raise VariantUnavailable(name, family.no_per_layer or "no per-layer precision control")
    return family.per_layer()


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class LayerResult:
    """Physics and speed of one per-layer assignment against FP32."""

    sweep: str  # SOLO: only `layer` reduced; REVERSE: all reduced but `layer`; BASELINE: none / all reduced
    layer: str
    precision: str  # the target precision of the sweep
    assignment: dict[str, str]  # every swept layer -> its precision
    worst_ratio: float  # max |shift| / tolerance over observables and energy bins (<= 1: inside tolerance)
    worst: str  # which observable and bin
    accuracy_metric: float  # paper metric against the FP32 showers (0: identical)
    ratios: dict[str, float]  # observable -> worst |shift| / tolerance over energy bins
    energy_shift: list[float]  # relative total-energy shift per energy bin (variant vs FP32)
    speedup: float  # vs the runtime's all-FP32 model (median of paired ratios)
    speedup_low: float
    speedup_high: float

    @property
    def accepted(self) -> bool:
        return self.worst_ratio <= 1.0

    @property
    def label(self) -> str:
        if self.sweep == SOLO:
            return f"{self.layer} only"
        if self.sweep == REVERSE:
            return f"all but {self.layer}"
        return "FP32 runtime" if self.layer == NO_LAYER else f"all {self.precision}"


@dataclass(frozen=True)
class SweepSettings:
    """Sample sizes of a sweep (all part of the cache key)."""

    showers: int = DEFAULT_SHOWERS
    seed: int = DEFAULT_SEED
    bins: int = DEFAULT_BINS
    pairs: int = DEFAULT_PAIRS
    speed_batch: int = SPEED_BATCH
    include_batchnorm: bool = False

    def __post_init__(self):
        for name in ("showers", "bins", "pairs", "speed_batch"):
            if getattr(self, name) < 1:
                raise VariantError(f"sweep setting {name} must be >= 1, got {getattr(self, name)}")
        if self.showers < 2 * self.bins:
            raise VariantError(f"need at least 2 showers per energy bin, got {self.showers} for {self.bins} bins")


@dataclass
class Sweep:
    """The solo and reverse sweeps of one model x runtime x target precision, with activation statistics."""

    model: str
    runtime: str
    precision: str
    key: dict
    layers: list[str]
    edges: list[float]  # GeV
    rows: list[LayerResult] = field(default_factory=list)
    activations: list[ActivationStats] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    created: str = ""
    cache_path: str = ""  # where it was read from or written to (not saved)
    from_cache: bool = False  # not saved

    def _of(self, sweep: str) -> dict[str, LayerResult]:
        return {r.layer: r for r in self.rows if r.sweep == sweep}

    def solo(self) -> dict[str, LayerResult]:
        return self._of(SOLO)

    def reverse(self) -> dict[str, LayerResult]:
        return self._of(REVERSE)

    def baseline(self) -> dict[str, LayerResult]:
        return self._of(BASELINE)

    def fragile(self) -> list[str]:
        """Layers whose target precision alone moves the physics beyond the tolerance table."""
        return [layer for layer, r in self.solo().items() if not r.accepted]

    def to_dict(self) -> dict:
        data = asdict(self)
        for transient in ("cache_path", "from_cache"):
            data.pop(transient)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Sweep:
        data = dict(data)
        data["rows"] = [LayerResult(**r) for r in data.get("rows", [])]
        data["activations"] = [ActivationStats(**a) for a in data.get("activations", [])]
        return cls(**data)


# ------------------------------------------------------------------ keys and cache


def calibration_sha256(calibration) -> str:
    return array_sha256(calibration.z, calibration.energy)


def default_cache_dir() -> Path:
    from gan.pretrained import cache_dir

    return cache_dir() / CACHE_SUBDIR


def sweep_key(weights: str, calibration: str, runtime: Runtime, precision: str, energy_range,
              tolerances: Mapping[str, float], settings: SweepSettings, layers=None) -> dict:
    """The cache key; ``layers``: the swept layers where not all of them (a quick build's), else left out."""
    key = {"schema": SCHEMA, "weights_sha256": weights, "calibration_sha256": calibration,
           "runtime": runtime.name, "builder": runtime.builder, "precision": precision,
           "energy_range_gev": [float(e) for e in energy_range],
           "tolerances": {k: float(v) for k, v in sorted(tolerances.items())}, **asdict(settings)}
    return key if layers is None else key | {"layers": list(layers)}


def key_digest(key: Mapping) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def cache_file(cache_dir, key: Mapping) -> Path:
    return Path(cache_dir) / f"{key['runtime']}-{key['precision']}-{key_digest(key)[:16]}.json"


def read_cached(path: Path, key: Mapping, log=print) -> Sweep | None:
    """The sweep cached at ``path`` if it was made with ``key``; None (and a note) for a stale or broken file."""
    if not path.is_file():
        return None
    try:
        sweep = Sweep.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        log(f"sensitivity: ignoring unreadable cache file {path} ({exc})")
        return None
    if sweep.key != dict(key):
        log(f"sensitivity: ignoring cache file {path} (made with other settings)")
        return None
    sweep.cache_path, sweep.from_cache = str(path), True
    return sweep


# ------------------------------------------------------------------ measuring


def _ratios(objective, showers) -> tuple[dict[str, float], list[float]]:
    """Observable -> worst |shift| / tolerance over bins, and the relative total-energy shift per bin."""
    from gan.paired import paired_shifts

    rows = paired_shifts(objective.fp32_showers, showers, objective.energy, objective.edges)
    ratios: dict[str, float] = {}
    for row in rows:
        name = row["observable"]
        if name in objective.tolerances:
            r = abs(row["shift"]) / objective.tolerances[name]
            ratios[name] = max(ratios.get(name, 0.0), math.inf if math.isnan(r) else r)
    energy = [row["shift"] for row in rows if row["observable"] == "total_energy_mean"]
    return ratios, energy


@dataclass
class _Bench:
    """What a sweep measures against: the objective and the runtime's all-FP32 model."""

    objective: object
    reference: object  # runtime all-FP32 build, for speed
    settings: SweepSettings

    def measure(self, sweep: str, layer: str, precision: str, assignment: dict, candidate) -> LayerResult:
        showers = np.asarray(candidate.generate(self.objective.z, self.objective.energy))
        evaluation = self.objective.evaluate(showers)
        ratios, energy = _ratios(self.objective, showers)
        reduced = precision in assignment.values()
        speed = self._speedup(candidate) if reduced else (1.0, 1.0, 1.0)  # else: the reference itself
        return LayerResult(sweep, layer, precision, dict(assignment), evaluation.worst_ratio, evaluation.worst,
                           evaluation.accuracy_metric, ratios, energy, *speed)

    def _speedup(self, candidate) -> tuple[float, float, float]:
        from quant.speed import paired_speedup

        s = self.settings
        z, energy = self.objective.z[:s.speed_batch], self.objective.energy[:s.speed_batch]
        result = paired_speedup(lambda: self.reference.generate(z, energy), lambda: candidate.generate(z, energy),
                                pairs=s.pairs, warmup=1, seed=s.seed)
        return result.median, result.low, result.high


def plan(layers, precision: str, reverse: bool) -> list[tuple[str, str, dict]]:
    """(sweep, layer, assignment) of every measurement, in order."""
    def only(reduced) -> dict:
        return {layer: precision if layer in reduced else FP32 for layer in layers}

    steps = [(BASELINE, NO_LAYER, only(()))] + [(SOLO, layer, only({layer})) for layer in layers]
    if reverse:
        steps.append((BASELINE, ALL_LAYERS, only(layers)))
        steps += [(REVERSE, layer, only(set(layers) - {layer})) for layer in layers]
    return steps


def _log(message: str) -> None:
    print(message, flush=True)


def _describe(r: LayerResult) -> str:
    return (f"{r.sweep:<8} {r.label:<22} worst ratio {r.worst_ratio:8.3g}  accuracy {r.accuracy_metric:.3g}  "
            f"speed-up {r.speedup:.2f}x")


def run_sweep(generator, calibration, precision: str, runtime: str | Runtime = "openvino", context=None, *,
              model: str = "", settings: SweepSettings = SweepSettings(), reverse: bool = True,
              activations: bool = True, cache_dir=None, use_cache: bool = True, refresh: bool = False,
              layers=None, reference: Callable | None = None, objective: Callable | None = None,
              log: Callable[[str], None] = _log) -> Sweep:
    """The solo (and reverse) sweep of ``precision`` on ``runtime`` for ``generator``; cached.

    ``context``: the model's :class:`~quant.context.BuildContext` (or its name; None: a weight file), whose
    energy range the physics inputs are drawn over and whose requirements are the tolerances; ``model``: the
    sweep's label (default the context's model). ``layers``: sweep only these (default every Dense/Conv3D).
    ``reference``: FP32 ``generate(z, energy)`` the physics is compared with (default: the Keras generator in
    float32); ``objective``: a function returning :func:`make_objective` for the same generator, context and
    settings (called only if something is measured; lets callers share the FP32 showers). Rows
    already in a matching cache file are reused; only missing ones are measured.
    """
    rt = get_runtime(runtime) if isinstance(runtime, str) else runtime
    if precision not in TARGETS:
        raise VariantError(f"unknown target precision '{precision}'; choose from {', '.join(TARGETS)}")
    if precision not in rt.precisions:
        raise VariantUnavailable(rt.name, f"no per-layer {precision} control ({rt.note or 'not supported'})")
    context = as_context(context)
    model = model or context.model or ""
    swept = None if layers is None else list(layers)
    layers = rt.layers(generator, settings.include_batchnorm, precision) if swept is None else swept
    key = sweep_key(weights_sha256(generator), calibration_sha256(calibration), rt, precision,
                    context.energy_range_gev, context.tolerances, settings, swept)
    path = cache_file(default_cache_dir() if cache_dir is None else cache_dir, key)
    cached = read_cached(path, key, log) if use_cache and not refresh else None
    steps = plan(layers, precision, reverse)
    have = {(r.sweep, r.layer) for r in cached.rows} if cached else set()
    if cached and all((s, layer) in have for s, layer, _ in steps) and (cached.activations or not activations):
        log(f"sensitivity: using cached sweep {path} ({cached.created})")
        cached.model = model or cached.model
        return cached

    start = time.perf_counter()
    notes = _notes(rt, settings, precision) + [context.tolerance_source]
    sweep = cached or Sweep(model, rt.name, precision, key, layers, [], notes=notes)
    sweep.model = model or sweep.model
    objective = objective() if objective else make_objective(generator, context, settings, reference)
    sweep.edges = [float(e) for e in objective.edges]
    bench = _Bench(objective, rt.build(generator, calibration, {}), settings)
    rows = {(r.sweep, r.layer): r for r in sweep.rows}
    for kind, layer, assignment in steps:
        if (kind, layer) not in rows:
            reduced = precision in assignment.values()
            candidate = rt.build(generator, calibration, assignment) if reduced else bench.reference
            rows[(kind, layer)] = bench.measure(kind, layer, precision, assignment, candidate)
            log(f"sensitivity {rt.name} {precision}: {_describe(rows[(kind, layer)])}")
    sweep.rows = [rows[(kind, layer)] for kind, layer, _ in steps] + \
        [r for k, r in rows.items() if k not in {(s, lay) for s, lay, _ in steps}]
    if activations and not sweep.activations:
        from quant.activations import layer_input_stats

        sweep.activations = layer_input_stats(generator, calibration.generator_inputs(), layers)
    sweep.seconds += time.perf_counter() - start
    sweep.created = time.strftime("%Y-%m-%d %H:%M:%S")
    if use_cache:
        write_json_atomic(path, sweep.to_dict())
        sweep.cache_path = str(path)
    return sweep


def _notes(rt: Runtime, settings: SweepSettings, precision: str) -> list[str]:
    notes = [f"physics: {settings.showers} paired showers (seed {settings.seed}, {settings.bins} energy bins) vs the "
             "FP32 Keras generator; ratios = |shift| / tolerance",
             f"speed: {settings.pairs} interleaved pairs of {settings.speed_batch} showers vs the {rt.name} all-FP32 "
             "model (rough on a shared CPU)",
             "layers not swept (activations, reshape, upsampling) follow the swept layer before them"]
    if settings.include_batchnorm and precision == "int8":
        notes.append("BatchNormalization not swept for int8 (no int8 kernel of its own; folded or kept float)")
    return notes + ([rt.note] if rt.note else [])


def make_objective(generator, context: BuildContext, settings: SweepSettings, reference: Callable | None = None):
    """The sweep's :class:`~quant.objective.PhysicsObjective`: ``settings.showers`` seeded inputs over the
    context's energy range, its requirements as tolerances, and the FP32 showers of ``reference`` (default: the
    Keras generator in float32)."""
    from quant import fp32
    from quant.objective import PhysicsObjective

    reference = reference or fp32.build(generator).generate
    return PhysicsObjective.for_generator(reference, context.energy_range_gev, settings.showers, settings.seed,
                                          settings.bins, context.tolerances)


def default_calibration(model: str):
    """The calibration the CLI and the validation suite use for ``model``."""
    from gan.pretrained import trained_energy_range
    from quant.calibration import make_calibration

    return make_calibration(CALIBRATION_N, CALIBRATION_SEED, trained_energy_range(model))


def cached_results(model: str, precision: str = "int8", runtime: str = "openvino", *,
                   settings: SweepSettings = SweepSettings(), cache_dir=None, generator=None, calibration=None,
                   context=None) -> Sweep | None:
    """The cached sweep of ``model`` with the CLI's defaults (or the given ones), or None: never measures.
    ``context``: default ``model``'s own."""
    from gan.pretrained import load_generator

    try:
        rt = get_runtime(runtime)
    except VariantUnavailable:
        return None
    generator = load_generator(model) if generator is None else generator
    calibration = default_calibration(model) if calibration is None else calibration
    context = as_context(model if context is None else context)
    key = sweep_key(weights_sha256(generator), calibration_sha256(calibration), rt, precision,
                    context.energy_range_gev, context.tolerances, settings)
    sweep = read_cached(cache_file(default_cache_dir() if cache_dir is None else cache_dir, key), key,
                        log=lambda message: None)
    if sweep is not None:
        sweep.model = model
    return sweep
