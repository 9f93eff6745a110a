"""Read and write calorimeter-shower HDF5 files (Geant4 reference showers and GAN output).

Layouts read, recognised by their dataset names:

* project / Geant4: ``ECAL`` (N, X, Y, Z), ``energy`` (N,), optional ``g4_cpu_s`` (N,);
* CERN EleEscan: ``ECAL`` with the primary energy in ``target[:, 1]``;
* CERN angle: ``ECAL``, ``energy`` and ``theta`` (N,).

``ECAL`` may carry a trailing channel axis of length 1, which is dropped. Cell and primary
energies are in GeV, axes are (x, y, layer). Any problem with a file, or with data about to be
written to one, raises :class:`ShowerFileError` with the message ``"<path>: <problem>"``.
Files are written in the project layout, atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from gan.outputs import clean_stale, temp_name

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

CELLS = (25, 25, 25)
"""Default (x, y, layer) grid of the 3DGAN ECAL."""
EXTRAS = ("g4_cpu_s", "theta")
"""Optional per-event fields besides the primary energy."""
PRODUCTION_MANIFEST = "manifest.json"
PRODUCTION_KIND = "calogan-production"
"""A production folder (``calogan produce``): shard files in this layout listed, in order, by its manifest."""

_EVENTS_PER_CHUNK = 16  # HDF5 chunk of the written ECAL, as in the Geant4 file
_COLUMN_CHUNK = 4096  # HDF5 chunk of the written per-event columns
_WRITE_SLICE = 256  # events handed to h5py per write call (bounds conversion copies)
_CACHE_BYTES = 8 * 2**20  # HDF5 chunk cache per dataset when reading


class ShowerFileError(ValueError):
    """A shower file is missing, unreadable or invalid; ``str()`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(os.fspath(path), problem)
        self.path = os.fspath(path)
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def _as_column(name: str, values, n: int) -> np.ndarray:
    """``values`` as a float32 (n,) array; (n, 1) is flattened. Raises ValueError."""
    column = np.asarray(values, dtype=np.float32)
    if column.ndim == 2 and column.shape[1] == 1:
        column = column[:, 0]
    if column.ndim != 1:
        raise ValueError(f"{name} has shape {column.shape} but expected ({n},)")
    if len(column) != n:
        raise ValueError(f"ECAL has {n} events but {name} has {len(column)}")
    return column


@dataclass(eq=False)
class Showers:
    """A batch of showers.

    ``ecal`` (N, X, Y, Z) float32 cell energies in GeV (a trailing channel axis of 1 is dropped),
    ``energy`` (N,) float32 primary energy in GeV, optional (N,) ``g4_cpu_s`` (Geant4 CPU seconds
    per event) and ``theta`` (incidence angle). Shapes are checked (ValueError); values are not.
    """

    ecal: np.ndarray
    energy: np.ndarray
    g4_cpu_s: np.ndarray | None = None
    theta: np.ndarray | None = None

    def __post_init__(self):
        ecal = np.asarray(self.ecal, dtype=np.float32)
        if ecal.ndim == 5 and ecal.shape[-1] == 1:
            ecal = ecal[..., 0]
        if ecal.ndim != 4:
            raise ValueError(f"ECAL has shape {ecal.shape} but expected (N, X, Y, Z)")
        self.ecal = ecal
        self.energy = _as_column("energy", self.energy, len(ecal))
        for name in EXTRAS:
            if getattr(self, name) is not None:
                setattr(self, name, _as_column(name, getattr(self, name), len(ecal)))

    def __len__(self) -> int:
        return len(self.energy)

    def extras(self) -> dict[str, np.ndarray]:
        """The optional per-event fields that are present, by name."""
        return {name: getattr(self, name) for name in EXTRAS if getattr(self, name) is not None}

    def select(self, mask) -> Showers:
        """The events picked by a boolean mask or an index array."""
        return Showers(self.ecal[mask], self.energy[mask],
                       **{name: column[mask] for name, column in self.extras().items()})

    @classmethod
    def concatenate(cls, parts: Sequence[Showers]) -> Showers:
        """All events of ``parts`` in order; they must carry the same optional fields."""
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to concatenate")
        names = set(parts[0].extras())
        if any(set(part.extras()) != names for part in parts):
            raise ValueError("cannot concatenate showers with different optional fields")
        return cls(np.concatenate([part.ecal for part in parts]),
                   np.concatenate([part.energy for part in parts]),
                   **{name: np.concatenate([getattr(part, name) for part in parts]) for name in names})


# ----------------------------------------------------------------------------- checks


def _check_grid(path, shape: tuple, cells: Sequence[int] | None) -> tuple[int, int, int]:
    """The (x, y, layer) grid of an ECAL of ``shape``, which must match ``cells`` unless None."""
    if len(shape) == 5 and shape[-1] == 1:
        grid = tuple(shape[1:4])
    elif len(shape) == 4:
        grid = tuple(shape[1:])
    else:
        grid = None
    if grid is None or (cells is not None and grid != tuple(cells)):
        expected = ", ".join(str(c) for c in cells) if cells is not None else "X, Y, Z"
        raise ShowerFileError(path, f"ECAL has shape {tuple(shape)} but expected (N, {expected})")
    return grid


def _check_energy(path, energy: np.ndarray, index) -> None:
    """Primary energies must be finite and > 0; ``index`` maps positions to event numbers."""
    bad = ~np.isfinite(energy)
    if bad.any():
        i = int(np.argmax(bad))
        raise ShowerFileError(path, f"primary energy is NaN/inf (event {index[i]}: {energy[i]!s})")
    bad = energy <= 0
    if bad.any():
        i = int(np.argmax(bad))
        raise ShowerFileError(path, f"primary energy must be > 0 GeV (event {index[i]}: {energy[i]!s})")


def _check_ecal(path, ecal: np.ndarray, index) -> None:
    """Cell energies must be finite and >= 0; ``index`` maps positions to event numbers."""
    if len(ecal) == 0:
        return
    flat = ecal.reshape(len(ecal), -1)

    def where(i: int, j: int) -> str:
        cell = tuple(int(c) for c in np.unravel_index(j, ecal.shape[1:]))
        return f"event {index[i]} at cell {cell}"

    if not np.isfinite(flat).all():
        finite = np.isfinite(flat)
        i = int(np.argmin(finite.all(axis=1)))
        j = int(np.argmin(finite[i]))
        raise ShowerFileError(path, f"ECAL contains NaN/inf in {where(i, j)} (value {flat[i, j]!s})")
    if flat.min() < 0:
        i = int(np.argmax((flat < 0).any(axis=1)))
        j = int(np.argmin(flat[i]))
        raise ShowerFileError(path, f"negative cell energy {flat[i, j]!s} GeV in {where(i, j)}")


def _check_extras(path, extras: Mapping[str, np.ndarray], index) -> None:
    for name, column in extras.items():
        bad = ~np.isfinite(column)
        if bad.any():
            raise ShowerFileError(path, f"{name} contains NaN/inf in event {index[int(np.argmax(bad))]}")


def _check_showers(path, showers: Showers, cells, first: int = 0) -> tuple[int, int, int]:
    """Full check of data about to be written as events ``first``, ``first + 1``, ...; returns the grid."""
    grid = _check_grid(path, showers.ecal.shape, cells)
    index = range(first, first + len(showers))
    _check_energy(path, showers.energy, index)
    _check_extras(path, showers.extras(), index)
    _check_ecal(path, showers.ecal, index)
    return grid


# ----------------------------------------------------------------------------- reading


@contextmanager
def _h5_errors(path, what: str):
    """Turn h5py's errors (OSError, KeyError, RuntimeError) into ShowerFileError."""
    try:
        yield
    except (OSError, KeyError, RuntimeError) as exc:
        raise ShowerFileError(path, f"cannot read {what} (truncated or corrupt file): {exc}") from None


def _open(path) -> h5py.File:
    if not Path(path).exists():
        raise ShowerFileError(path, "file not found")
    try:
        return h5py.File(path, "r", rdcc_nbytes=_CACHE_BYTES)
    except OSError as exc:
        raise ShowerFileError(path, f"not a readable HDF5 file (truncated or corrupt): {exc}") from None


def _dataset(f: h5py.File, name: str, path) -> h5py.Dataset:
    obj = f[name]
    if not isinstance(obj, h5py.Dataset):
        raise ShowerFileError(path, f"{name!r} is not a dataset")
    if obj.dtype.kind not in "fiu":
        raise ShowerFileError(path, f"{name} has dtype {obj.dtype} but expected numbers")
    return obj


@dataclass
class _Layout:
    n: int  # events in the file
    grid: tuple[int, int, int]
    energy: np.ndarray  # (n,) float32, checked
    extras: dict[str, np.ndarray]  # (n,) float32 columns, checked


def _scan(path, cells) -> _Layout:
    """Detect the layout, check shapes and read (and check) the per-event columns; ECAL is not read."""
    with _open(path) as f, _h5_errors(path, "file"):
        found = ", ".join(sorted(f.keys())) or "nothing"
        if "ECAL" not in f:
            raise ShowerFileError(path, f"missing dataset 'ECAL' (found: {found})")
        ecal = _dataset(f, "ECAL", path)
        grid = _check_grid(path, ecal.shape, cells)
        n = ecal.shape[0]
        columns = {}  # label in messages -> (field, values)
        if "energy" in f:
            columns["energy"] = ("energy", _dataset(f, "energy", path)[()])
        elif "target" in f:
            target = _dataset(f, "target", path)[()]
            if target.ndim < 2 or int(np.prod(target.shape[1:])) < 2:
                raise ShowerFileError(path, f"target has shape {target.shape} but expected (N, 4) "
                                            "with the primary energy in column 1")
            columns["target"] = ("energy", target.reshape(len(target), -1)[:, 1])
        else:
            raise ShowerFileError(path, f"missing dataset 'energy' (or 'target') (found: {found})")
        for name in EXTRAS:
            if name in f:
                columns[name] = (name, _dataset(f, name, path)[()])
    values = {}
    for label, (field, column) in columns.items():
        try:
            values[field] = _as_column(label, column, n)
        except ValueError as exc:
            raise ShowerFileError(path, str(exc)) from None
    if n == 0:
        raise ShowerFileError(path, "file is empty (0 events)")
    energy = values.pop("energy")
    _check_energy(path, energy, range(n))
    _check_extras(path, values, range(n))
    return _Layout(n, grid, energy, values)


def _check_range(energy_range) -> tuple[float, float] | None:
    if energy_range is None:
        return None
    lo, hi = (float(e) for e in energy_range)
    if not lo <= hi:
        raise ValueError(f"energy_range must be (lo, hi) with lo <= hi, got {energy_range!r}")
    return lo, hi


def _selected(energy: np.ndarray, energy_range: tuple[float, float] | None) -> np.ndarray:
    """Indices of events with ``lo <= energy <= hi`` (all when ``energy_range`` is None)."""
    if energy_range is None:
        return np.arange(len(energy))
    lo, hi = energy_range
    return np.flatnonzero((energy >= lo) & (energy <= hi))


def _read_rows(ds: h5py.Dataset, index: np.ndarray, cap: int) -> np.ndarray:
    """ECAL rows ``index`` (increasing) as float32, read as contiguous slabs.

    A slab is cut where two wanted rows are more than one HDF5 chunk apart or where it would
    span ``cap`` rows, so at most ``cap`` rows are held besides the result.
    """
    gap = ds.chunks[0] if ds.chunks else 1
    parts, first = [], 0
    for k in range(1, len(index) + 1):
        if k < len(index) and index[k] - index[k - 1] <= gap and index[k] - index[first] < cap:
            continue
        lo, hi = int(index[first]), int(index[k - 1]) + 1
        slab = ds[lo:hi]
        if slab.ndim == 5:
            slab = slab[..., 0]
        parts.append(slab if hi - lo == k - first else slab[index[first:k] - lo])
        first = k
    ecal = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return np.ascontiguousarray(ecal, dtype=np.float32)


def _plan(path, chunk_size, energy_range, max_events, start, cells) -> tuple[_Layout, np.ndarray]:
    """The file's layout and the absolute numbers of the events to read."""
    if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if max_events is not None and not (isinstance(max_events, (int, np.integer)) and max_events >= 1):
        raise ValueError(f"max_events must be a positive integer or None, got {max_events!r}")
    if not (isinstance(start, (int, np.integer)) and start >= 0):
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    energy_range = _check_range(energy_range)
    layout = _scan(path, cells)
    index = _selected(layout.energy, energy_range)
    index = index[index >= start]
    if len(index) == 0:
        where = f" at or after event {start} (of {layout.n})" if start else ""
        if energy_range is None:
            raise ShowerFileError(path, f"no events{where}")
        lo, hi = energy_range
        raise ShowerFileError(path, f"no events with energy in [{lo:g}, {hi:g}] GeV{where}")
    return layout, index[:max_events]


def _chunks(path, layout: _Layout, index: np.ndarray, chunk_size: int) -> Iterator[Showers]:
    with _open(path) as f:
        with _h5_errors(path, "ECAL"):
            ds = f["ECAL"]
            cap = max(chunk_size, ds.chunks[0] if ds.chunks else 1)
        for start in range(0, len(index), chunk_size):
            rows = index[start:start + chunk_size]
            with _h5_errors(path, f"ECAL events {rows[0]}-{rows[-1]}"):
                ecal = _read_rows(ds, rows, cap)
            _check_ecal(path, ecal, rows)
            yield Showers(ecal, layout.energy[rows],
                          **{name: column[rows] for name, column in layout.extras.items()})


def iter_showers(path: str | os.PathLike, chunk_size: int = 256,
                 energy_range: tuple[float, float] | None = None, max_events: int | None = None,
                 cells: Sequence[int] | None = CELLS, start: int = 0) -> Iterator[Showers]:
    """Stream the showers of a file as batches of ``chunk_size`` events (the last may be shorter).

    ``start`` skips the events before that event number; ``energy_range=(lo, hi)`` keeps events
    with ``lo <= energy <= hi`` GeV; ``max_events`` then keeps the first so many;
    ``cells`` is the required (x, y, layer) grid (None: any).
    The layout and the per-event columns are checked when called; the ECAL rows are read, and
    checked, only as batches are consumed. Raises ShowerFileError.

    ``path`` may be a production folder (``calogan produce``): its shards are read as one data set, in order,
    one shard at a time; event numbers (``start``) count across shards.
    """
    if Path(path).is_dir():
        return _folder_chunks(path, chunk_size, energy_range, max_events, start, cells)
    layout, index = _plan(path, chunk_size, energy_range, max_events, start, cells)
    return _chunks(path, layout, index, chunk_size)


def read_showers(path: str | os.PathLike, chunk_size: int = 256,
                 energy_range: tuple[float, float] | None = None, max_events: int | None = None,
                 cells: Sequence[int] | None = CELLS, start: int = 0) -> Showers:
    """All selected showers of a file at once; same arguments and result as concatenating
    :func:`iter_showers`, without holding two copies (a production folder: its shards concatenated)."""
    if Path(path).is_dir():
        parts = list(iter_showers(path, chunk_size, energy_range, max_events, cells, start))
        if not parts:
            raise ShowerFileError(path, "no events selected")
        return Showers.concatenate(parts)
    layout, index = _plan(path, chunk_size, energy_range, max_events, start, cells)
    ecal = np.empty((len(index), *layout.grid), dtype=np.float32)
    for start, batch in zip(range(0, len(index), chunk_size), _chunks(path, layout, index, chunk_size), strict=False):
        ecal[start:start + len(batch)] = batch.ecal
    return Showers(ecal, layout.energy[index],
                   **{name: column[index] for name, column in layout.extras.items()})


def read_energies(path: str | os.PathLike, energy_range: tuple[float, float] | None = None,
                  cells: Sequence[int] | None = CELLS) -> np.ndarray:
    """Primary energies (GeV) of the selected events, without reading ECAL. Raises ShowerFileError (also when
    no event is selected)."""
    if Path(path).is_dir():
        energy = np.concatenate([_folder_energies(f, energy_range, cells) for f in production_files(path)])
        if len(energy) == 0:
            raise ShowerFileError(path, f"no events with energy in {list(energy_range)} GeV")
        return energy
    layout, index = _plan(path, 1, energy_range, None, 0, cells)
    return layout.energy[index]


def count_showers(path: str | os.PathLike, energy_range: tuple[float, float] | None = None,
                  cells: Sequence[int] | None = CELLS) -> int:
    """Number of events (with ``lo <= energy <= hi`` GeV if given; may be 0). Reads only the
    per-event columns and the layout, not ECAL. Raises ShowerFileError for an invalid file."""
    energy_range = _check_range(energy_range)
    if Path(path).is_dir():
        return sum(len(_folder_energies(f, energy_range, cells)) for f in production_files(path))
    return len(_selected(_scan(path, cells).energy, energy_range))


def production_files(folder: str | os.PathLike) -> list[str]:
    """The shard files of a complete production folder, in order (its manifest's list). Raises ShowerFileError for
    a folder that is not a complete production or a listed shard that is missing."""
    import json

    manifest_file = Path(folder) / PRODUCTION_MANIFEST
    try:
        manifest = json.loads(manifest_file.read_text())
    except FileNotFoundError:
        raise ShowerFileError(folder, f"a folder but not a production (no {PRODUCTION_MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise ShowerFileError(manifest_file, f"unreadable manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != PRODUCTION_KIND:
        raise ShowerFileError(manifest_file, "not a production manifest")
    if not manifest.get("complete"):
        raise ShowerFileError(folder, "production is not complete (re-run its produce command to resume it)")
    files = [os.fspath(Path(folder) / entry["file"]) for entry in sorted(manifest["shards"], key=lambda e: e["index"])]
    missing = [f for f in files if not Path(f).is_file()]
    if not files or missing:
        raise ShowerFileError(folder, f"shard file missing: {missing[0]}" if missing else "no shards")
    return files


def _folder_energies(path, energy_range, cells) -> np.ndarray:
    energy = _scan(path, cells).energy
    return energy[_selected(energy, _check_range(energy_range))]


def _folder_chunks(folder, chunk_size, energy_range, max_events, start, cells) -> Iterator[Showers]:
    """iter_showers over a production folder's shards: batches of ``chunk_size`` across shard boundaries."""
    files = production_files(folder)
    _plan(files[0], chunk_size, None, max_events, 0, cells)  # argument checks now, not at the first batch
    energy_range = _check_range(energy_range)

    def batches():
        buffered, offset, left = [], 0, max_events
        for path in files:
            layout = _scan(path, cells)
            index = _selected(layout.energy, energy_range)
            index = index[index >= start - offset][:left]
            offset += layout.n
            if len(index):
                for batch in _chunks(path, layout, index, chunk_size):
                    buffered.append(batch)
                    while sum(map(len, buffered)) >= chunk_size:
                        joined = Showers.concatenate(buffered)
                        yield joined.select(slice(0, chunk_size))
                        buffered = [joined.select(slice(chunk_size, None))] if len(joined) > chunk_size else []
                if left is not None:
                    left -= len(index)
                    if left <= 0:
                        break
        if buffered:
            yield Showers.concatenate(buffered)
    return batches()


# ----------------------------------------------------------------------------- writing


class ShowerWriter:
    """Write showers batch by batch to a new file in the project layout, atomically.

    Use as a context manager; data go to a temporary file in the target's directory, which
    replaces ``path`` only when the ``with`` block exits without an exception (otherwise it is
    removed and an existing ``path`` is left untouched). Every batch is checked like a file being
    read; problems raise ShowerFileError naming ``path``. Memory is bounded by the batch size.
    ``generator`` and ``attrs`` become file attributes; ``cells`` is the required grid (None:
    that of the first batch).
    """

    def __init__(self, path: str | os.PathLike, *, cells: Sequence[int] | None = CELLS,
                 generator: str | None = None, attrs: Mapping[str, object] | None = None):
        self.path = os.fspath(path)
        self.cells = tuple(cells) if cells is not None else None
        self.attrs = {"units": "ECAL and energy in GeV; g4_cpu_s in CPU seconds"}
        if generator is not None:
            self.attrs["generator"] = generator
        self.attrs.update(attrs or {})
        self._file: h5py.File | None = None
        self._tmp: str | None = None
        self._fields: tuple[str, ...] | None = None  # optional fields, fixed by the first batch
        self._n = 0
        self._broken = False  # a write failed half-way: never publish

    def __len__(self) -> int:
        return self._n

    def __enter__(self) -> ShowerWriter:
        if self._tmp is not None:
            raise RuntimeError("ShowerWriter is not reentrant")
        target = Path(self.path).absolute()
        clean_stale(target)  # temporaries of killed writers of this file
        self._tmp = os.fspath(temp_name(target))
        try:
            self._file = h5py.File(self._tmp, "x")
            for key, value in self.attrs.items():
                try:
                    self._file.attrs[key] = value
                except (TypeError, ValueError) as exc:
                    raise ShowerFileError(self.path, f"cannot store attribute {key!r}: {exc}") from None
        except OSError as exc:
            self._discard()
            raise ShowerFileError(self.path, f"cannot create file: {exc}") from None
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self._broken:
                    raise ShowerFileError(self.path, "an earlier append failed; nothing written")
                if self._n == 0:
                    raise ShowerFileError(self.path, "nothing to write (0 events)")
                try:
                    self._file.close()
                    Path(self._tmp).replace(self.path)
                except OSError as error:
                    raise ShowerFileError(self.path, f"cannot write: {error}") from None
                self._tmp = None
        finally:
            self._discard()

    def _discard(self) -> None:
        """Close and delete the temporary file, if any."""
        if self._file is not None:
            with suppress(Exception):
                self._file.close()
            self._file = None
        if self._tmp is not None:
            with suppress(FileNotFoundError):
                Path(self._tmp).unlink()
            self._tmp = None

    def append(self, ecal, energy, **extra) -> None:
        """Add a batch: ``ecal`` (n, X, Y, Z[, 1]) GeV, ``energy`` (n,) GeV, and optionally
        ``g4_cpu_s=`` / ``theta=`` (n,) (None counts as absent). Every batch must carry the same
        optional fields."""
        unknown = sorted(set(extra) - set(EXTRAS))
        if unknown:
            raise TypeError(f"unknown per-event field(s) {unknown}; allowed: {list(EXTRAS)}")
        try:
            showers = Showers(ecal, energy, **extra)
        except ValueError as exc:
            raise ShowerFileError(self.path, str(exc)) from None
        self._write(showers)

    def _write(self, showers: Showers, checked: bool = False) -> None:
        if self._file is None:
            raise RuntimeError("ShowerWriter.append() must be called inside its 'with' block")
        grid = _check_grid(self.path, showers.ecal.shape, self.cells) if checked else \
            _check_showers(self.path, showers, self.cells, first=self._n)
        fields = tuple(showers.extras())
        if self._fields is not None and fields != self._fields:
            raise ShowerFileError(self.path, f"batch has optional fields {list(fields)} "
                                             f"but the first batch had {list(self._fields)}")
        n, k = self._n, len(showers)
        columns = {"ECAL": showers.ecal, "energy": showers.energy, **showers.extras()}
        try:
            if self._fields is None:
                self._create(grid, fields)
                self.cells, self._fields = grid, fields
            for name, data in columns.items():
                ds = self._file[name]
                ds.resize(n + k, axis=0)
                for s in range(0, k, _WRITE_SLICE):
                    ds[n + s:n + min(k, s + _WRITE_SLICE)] = data[s:s + _WRITE_SLICE]
        except OSError as exc:
            self._broken = True
            raise ShowerFileError(self.path, f"cannot write: {exc}") from None
        except BaseException:
            self._broken = True
            raise
        self._n = n + k

    def _create(self, grid, fields) -> None:
        f = self._file
        f.create_dataset("ECAL", shape=(0, *grid), maxshape=(None, *grid), dtype="f4",
                         chunks=(_EVENTS_PER_CHUNK, *grid), compression="gzip", shuffle=True)
        for name in ("energy", *fields):
            f.create_dataset(name, shape=(0,), maxshape=(None,), dtype="f4",
                             chunks=(_COLUMN_CHUNK,), compression="gzip", shuffle=True)


def write_showers(path: str | os.PathLike, showers: Showers | tuple, *,
                  cells: Sequence[int] | None = CELLS, generator: str | None = None,
                  attrs: Mapping[str, object] | None = None) -> None:
    """Write ``showers`` (a :class:`Showers` or an ``(ecal, energy)`` pair, GeV) to ``path`` in the
    project layout, atomically (see :class:`ShowerWriter`). The data are checked before anything
    is written; problems raise ShowerFileError naming ``path``."""
    if not isinstance(showers, Showers):
        try:
            ecal, energy = showers
        except (TypeError, ValueError):
            raise TypeError("showers must be a Showers or an (ecal, energy) pair") from None
        try:
            showers = Showers(ecal, energy)
        except ValueError as exc:
            raise ShowerFileError(path, str(exc)) from None
    if len(showers) == 0:
        raise ShowerFileError(path, "nothing to write (0 events)")
    _check_showers(path, showers, cells)
    with ShowerWriter(path, cells=cells, generator=generator, attrs=attrs) as writer:
        writer._write(showers, checked=True)
