"""Calibration inputs: latent vectors and primary energies drawn like the training distribution, seeded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gan.model import LATENT_SIZE, latent_input, sample_latent
from gan.pretrained import TRAINED_ENERGY_RANGE_GEV
from quant.base import VariantError

TRAINING_ENERGY_RANGE_GEV = TRAINED_ENERGY_RANGE_GEV["default"]


@dataclass(frozen=True)
class Calibration:
    """``z`` (N, 200) ~ N(0, 1) and ``energy`` (N,) in GeV; validated on construction."""

    z: np.ndarray
    energy: np.ndarray

    def __post_init__(self):
        z, energy = np.asarray(self.z), np.asarray(self.energy)
        if len(z) == 0:
            raise VariantError("calibration data is empty (0 samples)")
        if z.ndim != 2 or z.shape[1] != LATENT_SIZE:
            raise VariantError(f"calibration z must have shape (N, {LATENT_SIZE}), got {z.shape}")
        if energy.shape != (len(z),):
            raise VariantError(f"calibration energy must have shape ({len(z)},), got {energy.shape}")
        if not (np.all(np.isfinite(z)) and np.all(np.isfinite(energy))):
            raise VariantError("calibration data contains NaN or inf")
        if np.any(energy <= 0):
            raise VariantError(f"calibration energies must be > 0 GeV (min {energy.min()})")
        object.__setattr__(self, "z", z.astype(np.float32))
        object.__setattr__(self, "energy", energy.astype(np.float32))

    def __len__(self) -> int:
        return len(self.z)

    def generator_inputs(self) -> np.ndarray:
        """What the Keras generator sees: z * E / 100."""
        return latent_input(self.z, self.energy)

    def batches(self, batch_size: int = 32):
        inputs = self.generator_inputs()
        for i in range(0, len(inputs), batch_size):
            yield inputs[i:i + batch_size]


def make_calibration(n: int = 256, seed: int = 0, energy_range=TRAINING_ENERGY_RANGE_GEV) -> Calibration:
    """``n`` samples, energies uniform in ``energy_range`` (GeV), deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    energy = rng.uniform(*energy_range, n).astype(np.float32)
    return Calibration(sample_latent(n, seed=int(rng.integers(2**31))), energy)
