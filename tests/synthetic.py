"""Synthetic showers shared by the numpy-only physics tests."""

import numpy as np


def synthetic_showers(energy, shape=(25, 25, 25), seed=0):
    """Smooth 3DGAN-like showers: Gaussian in x/y, gamma-like in z, sf 0.02."""
    rng = np.random.default_rng(seed)
    x, y, z = (np.arange(n, dtype=np.float64) for n in shape)
    gx = np.exp(-0.5 * ((x - (shape[0] - 1) / 2) / 2.0) ** 2)
    gy = np.exp(-0.5 * ((y - (shape[1] - 1) / 2) / 2.0) ** 2)
    gz = (z + 0.5) ** 2 * np.exp(-(z + 0.5) / 3.0)
    base = gx[:, None, None] * gy[None, :, None] * gz[None, None, :]
    base /= base.sum()
    noise = rng.gamma(20.0, 1 / 20.0, size=(len(energy), *shape))
    return (0.02 * energy[:, None, None, None] * base * noise).astype(np.float32)
