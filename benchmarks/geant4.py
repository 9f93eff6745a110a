"""Speed-up of a GAN variant over Geant4, per primary-energy bin and per CPU core.

Geant4's cost is ``g4_cpu_s`` (CPU seconds per event, one core of the project's 2-core Xeon machine type) in the
shared Geant4 files (``../shared/data/*.h5``), else in the embedded reference sample (its last 500 events). A GAN
shower costs ``seconds per batch / batch size`` of wall time on ``threads`` threads, i.e. at most that times
``threads`` core-seconds; the speed-up per bin is median Geant4 seconds per event / GAN core-seconds per shower.
The GAN's cost does not depend on the energy; Geant4's grows with it (~3.6 ms per GeV). The per-bin medians and
speed-ups are :func:`gan.physics.geant4_cpu_per_bin` and :func:`gan.physics.speedup_over_geant4` (shared with the
report); this module only finds and reads the timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CPU_COLUMN = "g4_cpu_s"


@dataclass(frozen=True)
class Geant4Timing:
    """Primary energy (GeV) and Geant4 CPU seconds of each event, and where they came from."""

    source: str
    energy: np.ndarray
    cpu_s: np.ndarray


def read_timing(path) -> Geant4Timing:
    """``energy`` and ``g4_cpu_s`` of one file (the showers themselves are not read)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in ("energy", CPU_COLUMN) if name not in f]
            if missing:
                raise ValueError(f"{path}: no {' or '.join(missing)} dataset: no Geant4 timing in this file")
            energy, cpu_s = np.asarray(f["energy"][:], np.float64), np.asarray(f[CPU_COLUMN][:], np.float64)
    except OSError as exc:
        raise ValueError(f"{path}: unreadable HDF5 ({exc})") from None
    if energy.shape != cpu_s.shape or energy.ndim != 1:
        raise ValueError(f"{path}: energy {energy.shape} and {CPU_COLUMN} {cpu_s.shape} differ in shape")
    if not (np.all(np.isfinite(cpu_s)) and np.all(cpu_s > 0)):
        raise ValueError(f"{path}: {CPU_COLUMN} has non-finite or non-positive values")
    return Geant4Timing(str(path), energy, cpu_s)


def default_files() -> list[Path]:
    """The shared Geant4 files with timing when ../shared is here, else the embedded reference sample (a subset
    of the shared file, so never both)."""
    from gan.pretrained import DEFAULT_REFERENCE, shared_dir

    shared = sorted((shared_dir() / "data").glob("*.h5"))
    return shared or [DEFAULT_REFERENCE]


def load_timing(paths=None) -> Geant4Timing:
    """All events of ``paths`` (default :func:`default_files`) that carry Geant4 timing."""
    parts = [read_timing(p) for p in (paths or default_files())]
    return Geant4Timing(", ".join(Path(p.source).name for p in parts), np.concatenate([p.energy for p in parts]),
                        np.concatenate([p.cpu_s for p in parts]))
