"""The one interface every reduced-precision variant offers, and its errors.

A variant is built from an FP32 Keras generator plus :class:`~quant.calibration.Calibration` inputs and then
used like the FP32 model: ``generate(z, energy_gev)`` returns showers (N, 25, 25, 25) in GeV. ``op_report()``
says what really runs in which precision, so "INT8 but no speed-up" is explained rather than hidden.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

VARIANT_FILE = "variant.json"


class VariantError(ValueError):
    """Bad input to a variant (unknown name, bad calibration data, unreadable saved variant)."""


class VariantUnavailable(RuntimeError):
    """The variant cannot run here: a missing package, environment or CPU feature. ``reason`` says which."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"variant '{name}' is not available here: {reason}")
        self.name, self.reason = name, reason


@dataclass(frozen=True)
class OpPrecision:
    """One row of an op-coverage report: a layer or op and the precision it executes in."""

    op: str  # e.g. "conv3d_2" or "Conv3D (conv3d_2)"
    precision: str  # "int8", "bf16", "fp16", "fp32"
    note: str = ""


@dataclass
class OpReport:
    """What a variant really executes in reduced precision, and how that was established."""

    variant: str
    rows: list[OpPrecision] = field(default_factory=list)
    source: str = ""  # how the precisions were found: graph inspection, runtime model, oneDNN verbose log
    notes: list[str] = field(default_factory=list)

    def count(self, precision: str) -> int:
        return sum(row.precision == precision for row in self.rows)

    def summary(self) -> str:
        """e.g. 'int8 2, bf16 3, fp32 1'."""
        kinds = sorted({row.precision for row in self.rows})
        return ", ".join(f"{k} {self.count(k)}" for k in kinds)

    def format(self) -> str:
        lines = [f"{self.variant}: {self.summary()}  (source: {self.source})"]
        lines += [f"  {row.op:<28} {row.precision:<5} {row.note}".rstrip() for row in self.rows]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Variant(Protocol):
    """A built reduced-precision generator."""

    name: str

    def generate(self, z: np.ndarray, energy_gev: np.ndarray) -> np.ndarray: ...

    def save(self, directory) -> Path: ...

    def size_bytes(self) -> int: ...

    def op_report(self) -> OpReport: ...


def write_variant_file(directory, name: str, **extra) -> Path:
    """The small JSON file that names a saved variant (read by :func:`quant.registry.load`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / VARIANT_FILE
    path.write_text(json.dumps({"variant": name, **extra}, indent=1, sort_keys=True))
    return path


def read_variant_file(directory) -> dict:
    path = Path(directory) / VARIANT_FILE
    if not path.is_file():
        raise VariantError(f"{directory}: not a saved variant (no {VARIANT_FILE})")
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VariantError(f"{path}: unreadable ({exc})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("variant"), str):
        raise VariantError(f"{path}: not a saved variant (expected a JSON object with a 'variant' name)")
    return saved


def directory_size(directory) -> int:
    """Bytes of all files below ``directory``."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def array_sha256(*arrays) -> str:
    """sha256 of numpy arrays, dtype and shape included (a cache key, e.g. of calibration inputs)."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def weights_sha256(generator) -> str:
    """sha256 of a generator's weight arrays: the key of caches of work done on those weights (sweeps, folds);
    never used to tell which model it is (that is the build's :class:`~quant.context.BuildContext`)."""
    return array_sha256(*generator.get_weights())
