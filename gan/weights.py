"""Weight files: the project's own format and CERN's original Keras 2.0.4 HDF5 files.

Both are read by one reader: Keras 2's ``save_weights`` layout, where the root attribute ``layer_names`` lists
groups whose ``weight_names`` attribute lists ``"<layer>/<role>:0"`` datasets. The project's files use the same
layout plus ``calogan_format`` and ``metadata`` (JSON) root attributes, so CERN files and ours load alike into
models built by :mod:`gan.model` on Keras 3 or tf.keras 2.15.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from gan.outputs import atomic_path

FORMAT_VERSION = 1


class WeightFileError(ValueError):
    """A weight file that cannot be used; the message names the file and the problem."""


def _role(variable) -> str:
    """'kernel' from 'kernel', 'dense_1/kernel:0' or 'generator/dense_1/kernel:0'."""
    name = getattr(variable, "path", None) or variable.name
    return name.split("/")[-1].split(":")[0]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_group(f: h5py.File, group: str, path: Path, layers: dict) -> None:
    """Add the datasets that ``group``'s ``weight_names`` attribute lists to ``layers``; check each one."""
    if group not in f or not isinstance(f[group], h5py.Group):
        raise WeightFileError(f"{path}: layer group '{group}' is listed in 'layer_names' but missing")
    for wname in map(_text, f[group].attrs.get("weight_names", [])):
        parts = wname.split("/")
        if len(parts) < 2 or not parts[-1]:
            raise WeightFileError(f"{path}: weight name '{wname}' in '{group}' is not '<layer>/<role>:0'")
        if wname not in f[group] or not isinstance(f[group][wname], h5py.Dataset):
            raise WeightFileError(f"{path}: weight '{wname}' is listed in '{group}' but missing")
        value = np.asarray(f[group][wname])
        if value.dtype.kind not in "fiu":
            raise WeightFileError(f"{path}: weight '{wname}' has dtype {value.dtype}, not numbers")
        if not np.all(np.isfinite(value)):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise WeightFileError(f"{path}: weight '{wname}' has {bad} NaN or inf value(s)")
        layers.setdefault(parts[-2], {})[parts[-1].split(":")[0]] = value


def read_weight_arrays(path) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {role: array}} from a Keras-2-layout HDF5 weight file; every value checked finite."""
    path = Path(path)
    if path.is_dir():
        raise WeightFileError(f"{path}: is a folder, not a weight file")
    if not path.is_file():
        raise WeightFileError(f"{path}: weight file not found")
    try:
        with h5py.File(path, "r") as f:
            groups = [_text(n) for n in f.attrs.get("layer_names", [])]
            if not groups:
                raise WeightFileError(f"{path}: not a Keras weight file (no 'layer_names' attribute)")
            layers: dict[str, dict[str, np.ndarray]] = {}
            for group in groups:
                _read_group(f, group, path, layers)
    except (OSError, KeyError, RuntimeError) as exc:
        raise WeightFileError(f"{path}: not a readable HDF5 file (truncated or corrupt): {exc}") from None
    return layers


def read_metadata(path) -> dict:
    """The JSON metadata stored in a project weight file ({} for CERN files)."""
    try:
        with h5py.File(path, "r") as f:
            metadata = json.loads(_text(f.attrs.get("metadata", "{}")))
    except OSError as exc:
        raise WeightFileError(f"{path}: not a readable HDF5 file (truncated or corrupt): {exc}") from None
    except ValueError as exc:
        raise WeightFileError(f"{path}: 'metadata' attribute is not valid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise WeightFileError(f"{path}: 'metadata' attribute is not a JSON object")
    return metadata


def assign_weights(model, arrays: dict[str, dict[str, np.ndarray]], source="weights") -> None:
    """Set every weighted layer of ``model`` from ``arrays``; refuse missing layers or shape mismatches."""
    expected = {layer.name for layer in model.layers if layer.weights}
    missing, unused = sorted(expected - arrays.keys()), sorted(arrays.keys() - expected)
    if missing or unused:
        raise WeightFileError(f"{source}: layers do not match model '{model.name}' "
                              f"(missing: {', '.join(missing) or '-'}; unexpected: {', '.join(unused) or '-'})")
    for layer in model.layers:
        if not layer.weights:
            continue
        values = []
        for var in layer.weights:
            role = _role(var)
            value = arrays[layer.name].get(role)
            if value is None or tuple(value.shape) != tuple(var.shape):
                got = "missing" if value is None else f"shape {value.shape}"
                raise WeightFileError(f"{source}: {layer.name}/{role} is {got}, model needs {tuple(var.shape)}")
            values.append(value)
        layer.set_weights(values)


def load_weights(model, path) -> dict:
    """Load a CERN or project weight file into ``model``; return the file's metadata. Malformed files and
    NaN/inf weights raise WeightFileError before anything is assigned."""
    arrays, metadata = read_weight_arrays(path), read_metadata(path)
    assign_weights(model, arrays, source=str(path))
    return metadata


def save_weights(model, path, metadata: dict | None = None) -> Path:
    """Write ``model``'s weights in the project format, atomically (no partial file on failure)."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["calogan_format"] = FORMAT_VERSION
        f.attrs["layer_names"] = [model.name.encode()]
        f.attrs["metadata"] = json.dumps(metadata or {}, sort_keys=True)
        group = f.create_group(model.name)
        names = []
        for layer in model.layers:
            for var in layer.weights:
                wname = f"{layer.name}/{_role(var)}:0"
                group.create_dataset(wname, data=np.asarray(var.numpy(), dtype=np.float32))
                names.append(wname.encode())
        group.attrs["weight_names"] = names
    return path
