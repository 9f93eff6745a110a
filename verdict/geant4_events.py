"""Per-event quantities of every shared Geant4 event, computed once and cached (numpy .npz).

The requirement table (verdict/requirements.py) and the Geant4 null distributions (verdict/geant4_null.py)
need only per-event quantities, never the 31,600 x 25^3 cells at once: the paired observables' inputs
(gan.paired.event_quantities), the high-level features of the distances (gan.features) and the bin-mean inputs
of the accuracy metric (moments and profiles, already among the paired inputs).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from gan.outputs import atomic_path

SHARED_FILES = ("g4_electrons_10-250GeV.h5", "g4_electrons_10-250GeV_part2.h5")


def shared_data_dir() -> Path:
    from gan.pretrained import shared_dir

    return shared_dir() / "data"


def shared_files() -> list[Path]:
    """The shared Geant4 files that exist (both, in order, on a machine with ../shared; else none)."""
    return [p for p in (shared_data_dir() / name for name in SHARED_FILES) if p.is_file()]


def summarise(ecal, energy) -> dict[str, np.ndarray]:
    """Per-event quantities of one batch of showers: paired inputs, features, energy."""
    from gan import features, paired

    q = paired.event_quantities(ecal, energy)
    q["features"] = features.high_level_features(ecal, energy)[1]
    q["energy"] = np.asarray(energy, dtype=np.float64)
    return q


def _file_summary(path: Path) -> dict[str, np.ndarray]:
    from gan.data import iter_showers

    parts = [summarise(batch.ecal, batch.energy) for batch in iter_showers(path, chunk_size=256)]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _file_key(path: Path) -> str:
    """Name, size and the sha256 of the first MiB: enough to tell the shared files and their versions apart."""
    with Path(path).open("rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
    return f"{path.stem}-{path.stat().st_size}-{head}"


def load(paths=None, cache=None, log=print) -> dict[str, np.ndarray]:
    """Per-event quantities of every event of ``paths`` (default: both shared files), concatenated in order.

    Each file's summary is cached under ``cache`` (default: gan.pretrained.cache_dir()/g4-summaries).
    Adds "file" (index into ``paths``) and "event" (event number in its file).
    """
    from gan.pretrained import cache_dir

    paths = [Path(p) for p in (shared_files() if paths is None else paths)]
    if not paths:
        raise FileNotFoundError(f"no shared Geant4 file in {shared_data_dir()}")
    cache = Path(cache or cache_dir() / "g4-summaries")
    parts = []
    for i, path in enumerate(paths):
        target = cache / f"{_file_key(path)}.npz"
        if target.is_file():
            with np.load(target) as data:
                part = dict(data)
        else:
            log(f"summarising {path} (once; cached at {target})")
            part = _file_summary(path)
            with atomic_path(target) as tmp, Path(tmp).open("wb") as out:
                np.savez(out, **part)
        part["file"] = np.full(len(part["energy"]), i)
        part["event"] = np.arange(len(part["energy"]))
        parts.append(part)
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def take(events: dict[str, np.ndarray], index) -> dict[str, np.ndarray]:
    """The events ``index`` of a summary."""
    return {key: value[index] for key, value in events.items()}
