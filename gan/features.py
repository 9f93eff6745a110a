"""High-level feature vector per shower, for distribution distances (numpy only).

Conventions as in gan.physics: ``ecal`` (N, X, Y, Z) cell energies in GeV
(z = layer), ``energy`` (N,) primary energies in GeV, positions in cell units
with cell centres at 0..n-1. Cell energies are assumed >= 0.

Features (in this order; ``NN`` is the two-digit layer index):

* ``sampling_fraction``: E_cal / E_p (dimensionless);
* ``layer_energy_NN``: energy in layer NN (GeV);
* ``layer_centroid_x_NN``, ``layer_centroid_y_NN``: energy-weighted mean x, y
  of layer NN (cells);
* ``layer_width_x_NN``, ``layer_width_y_NN``: energy-weighted RMS about that
  centroid (cells);
* ``hits``: cells above physics.HIT_THRESHOLD_GEV (count);
* ``longitudinal_centroid``, ``longitudinal_width``: energy-weighted mean
  and RMS of the layer index z (layers).

Empty layers and empty showers never give NaN: the centroid of an empty
layer is the shower's overall (x or y) centroid, the centroid of an empty
shower is the grid centre (n - 1) / 2, and every width of empty energy is 0.
"""

import numpy as np

from gan import physics

GRID_LAYERS = 25
"""Number of layers (z) of the CERN 3DGAN grid, used by FEATURE_GROUPS."""

_PER_LAYER_GROUPS = ("layer_energy", "layer_centroid_x", "layer_centroid_y",
                     "layer_width_x", "layer_width_y")
_GROUP_ORDER = ("sampling_fraction",) + _PER_LAYER_GROUPS + (
    "hits", "longitudinal_centroid", "longitudinal_width")


def feature_groups(n_layers=GRID_LAYERS):
    """Group name -> tuple of feature names, in feature-vector order."""
    groups = {}
    for group in _GROUP_ORDER:
        if group in _PER_LAYER_GROUPS:
            groups[group] = tuple(f"{group}_{z:02d}" for z in range(n_layers))
        else:
            groups[group] = (group,)
    return groups


def feature_names(n_layers=GRID_LAYERS):
    """Flat list of feature names, in feature-vector order."""
    return [name for names in feature_groups(n_layers).values() for name in names]


FEATURE_GROUPS = feature_groups(GRID_LAYERS)
"""Group name -> feature names for the 25-layer 3DGAN grid."""


def _centroid_width(weights, fallback):
    """Weighted centroid and RMS along axis 1 of ``weights`` (N, n, ...).

    Returns two arrays of shape (N, ...): where the summed weight is <= 0 the
    centroid is ``fallback`` (broadcast to that shape) and the width 0.
    """
    n = weights.shape[1]
    pos = np.arange(n, dtype=np.float64).reshape((1, n) + (1,) * (weights.ndim - 2))
    total = weights.sum(axis=1)
    empty = total <= 0
    safe = np.where(empty, 1.0, total)
    centroid = (weights * pos).sum(axis=1) / safe
    var = (weights * (pos - np.expand_dims(centroid, 1)) ** 2).sum(axis=1) / safe
    centroid = np.where(empty, fallback, centroid)
    width = np.where(empty, 0.0, np.sqrt(np.maximum(var, 0.0)))
    return centroid, width


def _check_positive_energy(energy, n_events):
    """Primary energies as float64 (N,), raising unless finite and > 0 GeV."""
    energy = physics._check_energy(energy, n_events)
    if not np.all(np.isfinite(energy) & (energy > 0)):
        raise ValueError("primary energies must be finite and > 0 GeV")
    return energy


def high_level_features(ecal, energy):
    """Feature vector per shower: (names, values (N, F) float64).

    Names and order as in the module docstring (feature_names(Z) for a grid
    with Z layers; F = 5 Z + 4). Never NaN for finite input.
    """
    ecal = physics._check_ecal(ecal)
    energy = _check_positive_energy(energy, len(ecal))
    n_x, n_y, n_z = ecal.shape[1:]
    x_by_layer = ecal.sum(axis=2, dtype=np.float64)  # (N, X, Z)
    y_by_layer = ecal.sum(axis=1, dtype=np.float64)  # (N, Y, Z)
    layer_energy = x_by_layer.sum(axis=1)  # (N, Z)
    shower_cx, _ = _centroid_width(x_by_layer.sum(axis=2), (n_x - 1) / 2)
    shower_cy, _ = _centroid_width(y_by_layer.sum(axis=2), (n_y - 1) / 2)
    cx, wx = _centroid_width(x_by_layer, shower_cx[:, None])
    cy, wy = _centroid_width(y_by_layer, shower_cy[:, None])
    cz, wz = _centroid_width(layer_energy, (n_z - 1) / 2)
    values = np.column_stack([
        layer_energy.sum(axis=1) / energy, layer_energy, cx, cy, wx, wy,
        physics.hits_above(ecal), cz, wz,
    ])
    return feature_names(n_z), values.astype(np.float64, copy=False)
