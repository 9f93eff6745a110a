"""Time per op of one batch: what limits a variant.

Keras variants (:class:`quant.fp32.KerasVariant` and the folded ones): each layer alone, traced, on the input it
sees in a forward pass of the batch (median of ``repeats`` calls). The sum is below the whole graph's time by the
call overhead and whatever the graph fuses. OpenVINO variants: the CPU plugin's own per-node counters
(``PERF_COUNT``) of one infer request, fused nodes as the runtime executes them. Rough on a shared CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gan.model import latent_input


@dataclass(frozen=True)
class OpTime:
    op: str  # Keras layer or OpenVINO runtime node
    kind: str  # layer class or node type / kernel
    seconds: float


def _median_seconds(call, repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls after one warm-up call (quant.speed.seconds)."""
    from quant.speed import seconds

    call()
    return float(np.median([seconds(call) for _ in range(repeats)]))


def keras_profile(model, x: np.ndarray, repeats: int = 5) -> list[OpTime]:
    """Each layer of a Keras model with weights or ops alone on its real input (``x``: generator inputs)."""
    import tensorflow as tf

    rows, value = [], tf.constant(x)
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        run = tf.function(lambda t, layer=layer: layer(t, training=False))
        out = run(value)
        seconds = _median_seconds(lambda run=run, value=value: run(value), repeats)
        rows.append(OpTime(layer.name, f"{type(layer).__name__} {layer.compute_dtype}", seconds))
        value = out
    return rows


def openvino_profile(variant, x: np.ndarray, repeats: int = 5) -> list[OpTime]:
    """Per runtime node of an :class:`quant.openvino.OpenVINOGenerator`: median over ``repeats`` requests."""
    from quant.openvino import COMPILE_CONFIG, DEVICE, _core

    config = {**COMPILE_CONFIG, "INFERENCE_PRECISION_HINT": variant.inference_precision, "PERF_COUNT": "YES"}
    request = _core().compile_model(variant.model, DEVICE, config).create_infer_request()
    request.infer([x])
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        request.infer([x])
        for info in request.get_profiling_info():
            samples.setdefault((info.node_name, f"{info.node_type} {info.exec_type}"), []).append(
                info.real_time.total_seconds())
    return [OpTime(name, kind, float(np.median(t))) for (name, kind), t in samples.items()]


def profile(variant, z: np.ndarray, energy_gev: np.ndarray, repeats: int = 5) -> tuple[list[OpTime], float]:
    """(time per op, seconds of one whole ``generate`` call) for one batch; slowest ops first."""
    x = latent_input(z, energy_gev)
    inner = getattr(variant, "inner", variant)  # auto-mixed wraps an OpenVINO generator
    if hasattr(inner, "compiled"):
        rows = openvino_profile(inner, x, repeats)
    elif hasattr(variant, "model"):
        rows = keras_profile(variant.model, x, repeats)
    else:
        raise TypeError(f"no per-op profile for {type(variant).__name__}")
    whole = _median_seconds(lambda: variant.generate(z, energy_gev), repeats)
    return sorted(rows, key=lambda r: -r.seconds), whole


def format_profile(name: str, batch: int, rows: list[OpTime], whole_s: float, top: int = 12) -> str:
    total = sum(r.seconds for r in rows)
    lines = [f"{name}, batch {batch}: one generate() call {whole_s * 1e3:.1f} ms; ops {total * 1e3:.1f} ms in all",
             "| op | kind | ms | share of ops |", "|---|---|---|---|"]
    lines += [f"| {r.op} | {r.kind} | {r.seconds * 1e3:.2f} | {r.seconds / total:.0%} |" for r in rows[:top]
              if total > 0]
    if len(rows) > top:
        rest = sum(r.seconds for r in rows[top:])
        lines.append(f"| ({len(rows) - top} more) | | {rest * 1e3:.2f} | {rest / total:.0%} |")
    return "\n".join(lines)
