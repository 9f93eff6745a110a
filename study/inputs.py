"""Generator inputs shared by FP32 and every variant, so showers pair up event by event (same z, same energy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Inputs:
    """Generator inputs shared by FP32 and every variant: z (N, 200) and energy (N,) in GeV."""

    name: str
    z: np.ndarray
    energy: np.ndarray

    def __len__(self) -> int:
        return len(self.energy)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``size`` inputs (cycled if there are fewer): (z, energy in GeV)."""
        idx = np.arange(size) % len(self)
        return self.z[idx], self.energy[idx]


def uniform_inputs(name: str, n: int, energy_range, seed: int) -> Inputs:
    """``n`` latent vectors and energies uniform in ``energy_range`` (GeV), reproducible for ``seed``."""
    from gan.model import LATENT_SIZE

    z_rng, e_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    z = z_rng.standard_normal((n, LATENT_SIZE), dtype=np.float32)
    return Inputs(name, z, e_rng.uniform(*energy_range, n).astype(np.float32))


def inputs_at(name: str, energy, seed: int) -> Inputs:
    """Seeded latent vectors for given primary energies (GeV), e.g. those of Geant4 reference events."""
    from gan.model import sample_latent

    energy = np.asarray(energy, dtype=np.float32)
    return Inputs(name, sample_latent(len(energy), seed=seed), energy)
