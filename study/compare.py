"""``python -m quant sensitivity --compare``: the ``auto-mixed`` choice against the other int8/bf16 variants of a
model on the sweep's physics objective, with the study runner's pieces: builds through :class:`study.session.Session`
(each variant once; ``auto-mixed`` with the sweep's settings and cache), speed-ups from
:func:`study.runner.measure_speed` (one warm-up, interleaved pairs against the Keras FP32 reference), physics from
the objective every tuner uses (:func:`quant.sensitivity.make_objective`: worst |shift| / tolerance and the
paper's accuracy metric on the same seeded inputs).

It used to be a mini-study of its own inside ``quant.auto_mixed`` (its own build loop, timing and checks).
"""

from __future__ import annotations

import time
from typing import Callable

from study.inputs import Inputs
from study.session import REFERENCE_VARIANT, Session

COMPARED = ("auto-mixed", "int8+bf16", "openvino-int8-tuned", "inc-int8-tuned", "openvino-int8", "bf16")


def compare(model: str, names=COMPARED, *, settings=None, cache_dir=None, calibration_showers: int = 64,
            calibration_seed: int = 0, log: Callable[[str], None] = print) -> list[dict]:
    """Each registered, available variant of ``names`` on the same objective: worst ratio, accuracy metric,
    speed-up vs the Keras fp32 reference (rough), and its build (tuning) seconds; plus auto-mixed vs the hand mix.
    ``settings``: quant.sensitivity.SweepSettings (default: its defaults)."""
    from quant import auto_mixed, registry, sensitivity
    from quant.context import BuildContext
    from study.runner import measure_speed

    settings = settings or sensitivity.SweepSettings()
    session = Session(calibration_showers, calibration_seed)
    context = BuildContext.for_model(model)
    reference = session.variant(model, REFERENCE_VARIANT)
    objective = sensitivity.make_objective(session.generator(model), context, settings, reference.generate)
    inputs = Inputs("speed", objective.z[:settings.speed_batch], objective.energy[:settings.speed_batch])
    batch = len(inputs)
    rows, built = [], {}
    for name in names:
        reason = "not registered" if name not in registry.names() else registry.unavailable_reason(name)
        if reason:
            rows.append({"variant": name, "skipped": reason})
            continue
        if name == auto_mixed.NAME:  # with the sweep's settings and cache, not the registry's defaults
            start = time.perf_counter()
            variant = auto_mixed.build(session.generator(model), session.calibration(model), context,
                                       settings=settings, cache_dir=cache_dir, log=log)
            session.keep(model, name, variant)
            seconds = time.perf_counter() - start
        else:
            variant, seconds = session.variant(model, name), session.build_seconds(model, name)
        built[name] = variant
        result = objective.evaluate_generator(variant.generate)
        speed = measure_speed(reference, variant, inputs, [batch], settings.pairs)[batch].speedup
        row = {"variant": name, "worst_ratio": result.worst_ratio, "worst": result.worst,
               "accuracy_metric": result.accuracy_metric, "speedup": [speed.median, speed.low, speed.high],
               "build_seconds": seconds}
        if isinstance(variant, auto_mixed.AutoMixedVariant):
            row["tuning_seconds"] = variant.choice.tuning_seconds
            row["choice_cached"] = variant.choice.from_cache
        rows.append(row)
        log(f"compare: {name}: worst ratio {result.worst_ratio:.3g}, {speed.format()}, build {seconds:.0f} s")
    hand = auto_mixed.HAND_MIX_VARIANT
    if auto_mixed.NAME in built and hand in built:
        speed = measure_speed(built[hand], built[auto_mixed.NAME], inputs, [batch], settings.pairs)[batch].speedup
        rows.append({"variant": f"{auto_mixed.NAME} vs {hand}", "speedup": [speed.median, speed.low, speed.high]})
    return rows


def format_comparison(rows) -> str:
    """A markdown table of :func:`compare` rows."""
    from quant.auto_mixed import TOLERANCE

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
