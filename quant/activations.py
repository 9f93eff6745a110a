"""Range statistics of each layer's input activations: why a layer is fragile in int8.

A layer is quantized through its input tensor: with the symmetric per-tensor min/max scheme (scale =
max|x| / 127, signed int8, no zero point: NNCF's ``PERFORMANCE`` preset for activations), every value with
|x| < scale / 2 becomes 0. A heavy-tailed input (a few large values, most small) gets a large scale, and most of
its small values round to zero: :func:`range_stats` measures exactly that fraction. The statistics are numpy
only; :func:`capture_layer_inputs` gets the activations from the FP32 Keras generator through a sub-model.
NNCF averages per-sample min/max over the calibration set, so its scale is a little smaller than the global
max taken here; the fraction rounded to zero is then a lower bound for NNCF's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

INT8_MAX = 127  # symmetric signed int8: values -127..127
PERCENTILES = (0.1, 1.0, 50.0, 99.0, 99.9)  # of the values; the tail ratio uses the 99.9th of |x|
TAIL_PERCENTILE = 99.9
WEIGHTED = ("Dense", "Conv3D", "BatchNormalization")
COMPUTE = ("Dense", "Conv3D")


@dataclass(frozen=True)
class ActivationStats:
    """Range of one layer's input over the calibration inputs, and what int8 does to it."""

    layer: str
    values: int  # number of values seen
    minimum: float
    maximum: float
    percentiles: dict[str, float]  # "p0.1" .. "p99.9" of the values
    zero_fraction: float  # values exactly 0 in FP32 (zero padding, ReLU)
    int8_scale: float  # max|x| / 127
    rounded_to_zero: float  # fraction of the non-zero values that int8 turns into 0
    tail_ratio: float  # max|x| / 99.9th percentile of |x|: >> 1 for a heavy tail (one outlier sets the scale)

    def to_dict(self) -> dict:
        return asdict(self)


def int8_scale(values: np.ndarray) -> float:
    """Symmetric per-tensor min/max scale: max|x| / 127 (0 for an all-zero tensor)."""
    return float(np.max(np.abs(values))) / INT8_MAX if np.size(values) else 0.0


def rounded_to_zero_fraction(values: np.ndarray, scale: float) -> float:
    """Fraction of the non-zero ``values`` whose int8 code round(x / scale) is 0 (ties to even, as numpy)."""
    nonzero = np.asarray(values)[np.asarray(values) != 0]
    if nonzero.size == 0:
        return 0.0
    if scale <= 0:
        return 1.0
    return float(np.mean(np.rint(nonzero / scale) == 0))


def range_stats(layer: str, values: np.ndarray, scale: float | None = None) -> ActivationStats:
    """Statistics of ``values`` (any shape); ``scale`` defaults to their own :func:`int8_scale`."""
    x = np.asarray(values, dtype=np.float32).ravel()
    if x.size == 0:
        raise ValueError(f"{layer}: no activation values")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{layer}: activations contain NaN or inf")
    scale = int8_scale(x) if scale is None else float(scale)
    magnitude = np.abs(x)
    tail = float(np.percentile(magnitude, TAIL_PERCENTILE))
    percentiles = np.percentile(x, PERCENTILES)
    return ActivationStats(
        layer, int(x.size), float(x.min()), float(x.max()),
        {f"p{p:g}": float(v) for p, v in zip(PERCENTILES, percentiles, strict=True)},
        float(np.mean(x == 0)), scale, rounded_to_zero_fraction(x, scale),
        float(magnitude.max() / tail) if tail > 0 else float("inf") if magnitude.max() > 0 else 1.0)


def layer_names(generator, include_batchnorm: bool = False) -> list[str]:
    """The Dense and Conv3D layers of ``generator`` (and BatchNormalization ones), in graph order."""
    kinds = WEIGHTED if include_batchnorm else COMPUTE
    return [layer.name for layer in generator.layers if type(layer).__name__ in kinds]


def capture_layer_inputs(generator, inputs: np.ndarray, layers, batch_size: int = 32) -> dict[str, np.ndarray]:
    """The FP32 input tensor of each of ``layers`` for generator ``inputs`` (N, 200), via one Keras sub-model."""
    import keras

    missing = [name for name in layers if name not in {layer.name for layer in generator.layers}]
    if missing:
        raise ValueError(f"generator '{generator.name}' has no layer {', '.join(missing)}")
    probe = keras.Model(generator.input, [generator.get_layer(name).input for name in layers])
    chunks = [probe(inputs[i:i + batch_size], training=False) for i in range(0, len(inputs), batch_size)]
    return {name: np.concatenate([np.asarray(c[k]) for c in chunks]) for k, name in enumerate(layers)}


def layer_input_stats(generator, inputs: np.ndarray, layers=None) -> list[ActivationStats]:
    """:class:`ActivationStats` of the input of each layer (default: Dense and Conv3D) for ``inputs``."""
    layers = layer_names(generator) if layers is None else list(layers)
    captured = capture_layer_inputs(generator, np.asarray(inputs, np.float32), layers)
    return [range_stats(name, captured[name]) for name in layers]


def format_stats(stats) -> str:
    """A markdown table of activation statistics."""
    head = ("| layer input | min | p0.1 | p50 | p99.9 | max | zeros | int8 scale | rounded to 0 | max/p99.9 |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    rows = [f"| {s.layer} | {s.minimum:.3g} | {s.percentiles['p0.1']:.3g} | {s.percentiles['p50']:.3g} | "
            f"{s.percentiles['p99.9']:.3g} | {s.maximum:.3g} | {s.zero_fraction:.1%} | {s.int8_scale:.3g} | "
            f"{s.rounded_to_zero:.1%} | {s.tail_ratio:.3g} |" for s in stats]
    return "\n".join([head, *rows])


def from_dict(data: dict) -> ActivationStats:
    return ActivationStats(**data)
