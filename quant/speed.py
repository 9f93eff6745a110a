"""Speed of a variant relative to FP32, measured side by side: the only speed number this project gates on.

Absolute showers/s on a shared machine drift with whatever else runs; the ratio of two calls made back to back on
the same batch does not (both see the same load). :func:`paired_speedup` alternates the reference and the
variant call (which one goes first alternates too), takes the ratio within each pair and reports the median with
a seeded bootstrap interval. Used by the benchmarks, the report and the sensitivity sweep alike.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Speedup:
    """Median of per-pair time ratios reference/variant (> 1: the variant is faster) and its bootstrap interval."""

    median: float
    low: float
    high: float
    pairs: int
    reference_s: float  # median seconds per call of the reference
    variant_s: float  # median seconds per call of the variant

    def format(self) -> str:
        return f"{self.median:.2f}x [{self.low:.2f}, {self.high:.2f}]"

    def to_dict(self) -> dict:
        return asdict(self)


def seconds(call: Callable[[], object]) -> float:
    """Wall seconds of one ``call()``: the project's one stopwatch."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def bootstrap_interval(values, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                       confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of ``values`` (deterministic for ``seed``)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"need a non-empty 1-D sequence of values to bootstrap, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("values to bootstrap contain NaN or inf")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples} and {confidence}")
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(resamples, values.size)), axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(low), float(high)


def speedup_from_times(reference_s, variant_s, seed: int = 0) -> Speedup:
    """Speed-up from paired call times (seconds, same length): ratios taken within each pair."""
    reference_s, variant_s = np.asarray(reference_s, np.float64), np.asarray(variant_s, np.float64)
    if reference_s.shape != variant_s.shape or reference_s.ndim != 1 or reference_s.size == 0:
        raise ValueError(f"need equally many paired times, got {reference_s.shape} and {variant_s.shape}")
    if not (np.all(np.isfinite(reference_s)) and np.all(np.isfinite(variant_s))):
        raise ValueError("call times contain NaN or inf")
    if np.any(reference_s <= 0) or np.any(variant_s <= 0):
        raise ValueError("call times must be > 0 s")
    ratios = reference_s / variant_s
    low, high = bootstrap_interval(ratios, seed)
    return Speedup(float(np.median(ratios)), low, high, int(ratios.size),
                   float(np.median(reference_s)), float(np.median(variant_s)))


def paired_times(reference: Callable[[], object], variant: Callable[[], object], pairs: int = 10,
                 warmup: int = 1) -> tuple[list[float], list[float]]:
    """Seconds per call of ``reference`` and ``variant``, interleaved; the first of each pair alternates."""
    if pairs < 1 or warmup < 0:
        raise ValueError(f"need pairs >= 1 and warmup >= 0, got {pairs} and {warmup}")
    for _ in range(warmup):
        reference(), variant()
    ref_s, var_s = [], []
    for i in range(pairs):
        if i % 2:
            var_s.append(seconds(variant))
            ref_s.append(seconds(reference))
        else:
            ref_s.append(seconds(reference))
            var_s.append(seconds(variant))
    return ref_s, var_s


def paired_speedup(reference: Callable[[], object], variant: Callable[[], object], pairs: int = 10,
                   warmup: int = 1, seed: int = 0) -> Speedup:
    """Speed-up of ``variant`` over ``reference`` (two no-argument calls doing the same work)."""
    return speedup_from_times(*paired_times(reference, variant, pairs, warmup), seed=seed)


def warmed_speedup(reference: Callable[[], object], variant: Callable[[], object],
                   pairs: int | Callable[[float], int], seed: int = 0) -> Speedup:
    """:func:`paired_speedup` after one warm-up call of each (first calls trace and allocate); ``pairs`` is a number
    or a function of the seconds one timed (reference, variant) pair takes, so slow variants get fewer pairs.
    The warm-up and timing policy of the report, the benchmarks and the study runner."""
    reference(), variant()
    if callable(pairs):
        pairs = pairs(seconds(reference) + seconds(variant))
    return paired_speedup(reference, variant, pairs=pairs, warmup=0, seed=seed)


def showers_per_second(seconds_per_call: float, batch_size: int) -> float:
    """Showers per second for ``batch_size`` showers generated in ``seconds_per_call``."""
    if not seconds_per_call > 0:
        raise ValueError(f"seconds per call must be > 0, got {seconds_per_call}")
    return batch_size / seconds_per_call
