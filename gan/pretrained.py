"""Named generators: the embedded default and CERN's 2017 weights (pinned download, never committed).

``load_generator("default")`` needs nothing outside the package. ``"cern2017"`` is looked up, in order, at
``$CALOGAN_CERN_WEIGHTS``, ``models/cern-3dgan-2017/`` in the shared folder (:func:`shared_dir`), and the download cache
(``$CALOGAN_CACHE`` or ``~/.cache/calogan``); :func:`fetch_cern_weights` downloads it there, checking sha256.
Any other name is taken as a path to a weight file.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from gan.outputs import atomic_path
from gan.weights import WeightFileError, load_weights

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = PACKAGE_DIR / "default" / "generator.h5"
DEFAULT_REFERENCE = PACKAGE_DIR / "default" / "g4_reference.h5"
SHARED_ENV_VAR = "CALOGAN_SHARED"

CERN_FILE = "params_generator_epoch_049.hdf5"
CERN_URL = ("https://raw.githubusercontent.com/svalleco/3Dgan/ea8fb87eb4f6e05037ab2420d587ed5cb6e7d63c/"
            "keras/energy_gan/results/weights/veganweights/" + CERN_FILE)
CERN_SHA256 = "01a8d7ecc2d8d9d8f3160e166c16f535d7616a5031253894f7ba277901f5891d"
CERN_MAX_BYTES = 64 * 2**20  # the pinned file is ~4 MB; a download larger than this is refused, not read on
MODEL_NAMES = ("default", "cern2017")
TRAINED_ENERGY_RANGE_GEV = {"default": (10.0, 250.0), "cern2017": (100.0, 500.0)}


def trained_energy_range(model: str) -> tuple[float, float]:
    """Primary-energy range (GeV) a named model was trained on; the default model's for weight-file paths."""
    return TRAINED_ENERGY_RANGE_GEV.get(model, TRAINED_ENERGY_RANGE_GEV["default"])


def extrapolation_warning(model: str, low_gev: float, high_gev: float, what: str = "energies") -> str | None:
    """A one-line warning when ``low_gev``-``high_gev`` leaves the range ``model`` was trained on, else None."""
    lo, hi = trained_energy_range(model)
    if lo <= low_gev and high_gev <= hi:
        return None
    known = "was trained on" if model in TRAINED_ENERGY_RANGE_GEV else "is assumed trained on (as 'default')"
    return (f"warning: {what} {low_gev:g}-{high_gev:g} GeV extend outside {lo:g}-{hi:g} GeV, the range model "
            f"'{model}' {known}: extrapolated, expect unphysical showers there")


def shared_dir(start: Path | None = None) -> Path:
    """The shared folder (CERN weights, the full Geant4 data): ``$CALOGAN_SHARED``, else ``shared`` beside the
    repository that holds the current directory (or ``start``), else ``../shared`` from it. Never found from this
    file's position: an installed package has no checkout around it. It may not exist (callers skip or say so)."""
    env = os.environ.get(SHARED_ENV_VAR)
    if env:
        return Path(env).expanduser()
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    root = next((d for d in (here, *here.parents) if (d / "pyproject.toml").is_file() or (d / ".git").exists()), here)
    return root.parent / "shared"


def shared_data_file(name: str = "g4_electrons_10-250GeV.h5") -> Path:
    """A Geant4 file of the shared data set (it may not exist)."""
    return shared_dir() / "data" / name


def cache_dir() -> Path:
    return Path(os.environ.get("CALOGAN_CACHE", Path.home() / ".cache" / "calogan"))


def sha256sum(path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cern_candidates() -> list[Path]:
    env = os.environ.get("CALOGAN_CERN_WEIGHTS")
    found = [Path(env)] if env else []
    return found + [shared_dir() / "models" / "cern-3dgan-2017" / CERN_FILE, cache_dir() / CERN_FILE]


def find_cern_weights() -> Path | None:
    """The first existing CERN weight file with the pinned sha256, or None."""
    for path in _cern_candidates():
        if path.is_file():
            if sha256sum(path) != CERN_SHA256:
                again = " (a corrupt download: `python -m gan fetch-cern` fetches it again)" \
                    if path == cache_dir() / CERN_FILE else ""
                raise WeightFileError(f"{path}: sha256 does not match the pinned CERN weights ({CERN_SHA256})"
                                      + again)
            return path
    return None


def _download(url: str, target: Path, timeout_s: float, max_bytes: int) -> None:
    """``url`` into ``target`` in blocks, refusing more than ``max_bytes`` (WeightFileError)."""
    with Path(target).open("wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
        size = 0
        for block in iter(lambda: response.read(1 << 20), b""):
            size += len(block)
            if size > max_bytes:
                raise WeightFileError(f"{url}: download exceeds {max_bytes // 2**20} MiB (the pinned file is "
                                      "~4 MB); refused")
            out.write(block)


def fetch_cern_weights(timeout_s: float = 30.0) -> Path:
    """Return the CERN weight file, downloading it into the cache if it is nowhere yet."""
    target = cache_dir() / CERN_FILE
    if target.is_file() and sha256sum(target) != CERN_SHA256:
        target.unlink()  # our own corrupt or truncated download: fetched again below
    found = find_cern_weights()
    if found:
        return found
    try:
        with atomic_path(target) as tmp:
            _download(CERN_URL, tmp, timeout_s, CERN_MAX_BYTES)
            if sha256sum(tmp) != CERN_SHA256:
                raise WeightFileError(f"{CERN_URL}: downloaded file's sha256 differs from the pinned {CERN_SHA256}")
    except (urllib.error.URLError, OSError) as exc:
        raise WeightFileError(
            f"CERN weights not found and the download failed ({exc}). Without internet, copy {CERN_FILE} "
            f"(sha256 {CERN_SHA256}) to {target} or set CALOGAN_CERN_WEIGHTS to its path.") from None
    return target


def resolve_weights(model: str) -> Path:
    """Path of the weight file for a model name ('default', 'cern2017') or a path."""
    if model == "default":
        return DEFAULT_WEIGHTS
    if model == "cern2017":
        found = find_cern_weights()
        if found is None:
            raise WeightFileError(f"CERN weights not found (looked at: {', '.join(map(str, _cern_candidates()))}); "
                                  "run `python -m gan fetch-cern` to download them")
        return found
    return Path(model)


def load_generator(model: str = "default"):
    """A Keras generator with the weights of ``model`` ('default', 'cern2017' or a weight-file path)."""
    from gan.model import build_generator

    generator = build_generator()
    load_weights(generator, resolve_weights(model))
    return generator
