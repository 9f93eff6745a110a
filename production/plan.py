"""What a production makes: its parameters, and its shards with their seeds and primary energies (numpy only).

Shard ``i`` draws from ``numpy.random.SeedSequence(seed, spawn_key=(i,))`` (the i-th child of
``SeedSequence(seed).spawn``), split again in two: latent vectors z and, for an energy range, energies uniform in
it. With ``--energies FILE`` shard ``i`` takes events ``i * shard_size ...`` of the file's list in order. A
shard's content therefore depends on (model, variant, seed, energies, i, shard_size) only, never on which worker
made it, how many workers ran, or in which order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SEED_RULE = ("shard i: numpy SeedSequence(entropy=seed, spawn_key=(i,)).spawn(2) -> (z, energy) generators; "
             "z standard normal float32 (N, 200); energy uniform in the range, float32 (or the file's values "
             "i*shard_size ... in order)")


class ProductionError(ValueError):
    """Bad input or a run that cannot go on; one line naming the argument or path and the problem."""


@dataclass(frozen=True)
class Plan:
    """The parameters that fix a production's content (a resumed run must repeat them exactly)."""

    model: str  # 'default', 'cern2017' or a weight-file path
    variant: str  # a registered variant name, or a saved variant folder
    n: int
    seed: int
    shard_size: int
    energy_range_gev: tuple[float, float] | None  # uniform energies in this range, or None: energies_file
    energies_file: str | None = None
    energies_sha256: str | None = None  # of the energies actually used (float32 bytes)
    energies: np.ndarray | None = field(default=None, compare=False, repr=False)  # (n,) GeV with a file

    @property
    def n_shards(self) -> int:
        return -(-self.n // self.shard_size)

    def shard_count(self, i: int) -> int:
        return min(self.shard_size, self.n - i * self.shard_size)

    def shard_file(self, i: int) -> str:
        return f"shard-{i:06d}.h5"

    def params(self) -> dict:
        """The JSON-able parameters compared on resume."""
        d = asdict(self)
        d.pop("energies")
        d["energy_range_gev"] = list(self.energy_range_gev) if self.energy_range_gev else None
        return d

    def shard_energies(self, i: int) -> np.ndarray | None:
        """The file's energies of shard ``i`` (None for an energy range: drawn from the shard's seed)."""
        if self.energies is None:
            return None
        start = i * self.shard_size
        return self.energies[start:start + self.shard_count(i)]


def shard_inputs(seed: int, i: int, n: int, energy_range_gev=None, energies=None) -> tuple[np.ndarray, np.ndarray]:
    """Latent vectors z (n, 200) float32 and primary energies (n,) float32 GeV of shard ``i``."""
    from gan.model import LATENT_SIZE

    z_seq, e_seq = np.random.SeedSequence(seed, spawn_key=(i,)).spawn(2)
    z = np.random.default_rng(z_seq).standard_normal((n, LATENT_SIZE), dtype=np.float32)
    if energies is not None:
        energy = np.asarray(energies, dtype=np.float32)
        if len(energy) != n:
            raise ValueError(f"shard {i}: {len(energy)} energies for {n} showers")
    else:
        lo, hi = energy_range_gev
        energy = np.random.default_rng(e_seq).uniform(lo, hi, n).astype(np.float32)
    return z, energy


def plan_inputs(plan: Plan, i: int) -> tuple[np.ndarray, np.ndarray]:
    return shard_inputs(plan.seed, i, plan.shard_count(i), plan.energy_range_gev, plan.shard_energies(i))


def read_energies_file(path) -> np.ndarray:
    """Primary energies (GeV) from ``.npy``, a text file (one value a line, or comma/space separated), or a shower
    HDF5 file (its energy column)."""
    path = Path(path)
    if not path.is_file():
        raise ProductionError(f"--energies {path}: no such file")
    try:
        if path.suffix in (".h5", ".hdf5"):
            from gan.data import read_energies

            values = read_energies(path, cells=None)
        elif path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            values = np.array(path.read_text().replace(",", " ").split(), dtype=np.float64)
    except (ValueError, OSError) as exc:
        raise ProductionError(f"--energies {path}: cannot read energies ({str(exc).splitlines()[0]})") from None
    values = np.asarray(values, dtype=np.float32).ravel()
    if len(values) == 0:
        raise ProductionError(f"--energies {path}: no energies")
    if not np.isfinite(values).all() or values.min() <= 0:
        raise ProductionError(f"--energies {path}: energies must be finite and > 0 GeV")
    return values


def energies_digest(energies: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(energies, dtype=np.float32).tobytes()).hexdigest()


def params_json(plan: Plan) -> str:
    return json.dumps(plan.params(), sort_keys=True)
