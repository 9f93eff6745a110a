"""Paired checks: a reduced-precision variant against its FP32 model, event by event.

Both shower samples come from the same latent vectors and primary energies,
so event i of ``variant_ecal`` is the variant's version of event i of
``fp32_ecal``. Conventions as in gan.physics: ecal (N, X, Y, Z) in GeV,
energy (N,) in GeV, positions in cells (z: layers).

Every observable is a statistic of per-event quantities over the events of
one primary-energy bin; its shift is variant minus FP32, either relative to
the FP32 value (``relative``: (variant - fp32) / |fp32|; 0/0 gives 0, x/0
gives +-inf) or absolute (``cells``; ``cells2`` for the longitudinal second
moment, in layers^2: its relative shift is ill-conditioned when a generator
puts its energy in one or two layers, as the 1-epoch default does). Vector observables (profiles: one
component per slice holding > 1% of the FP32 energy; the cell spectrum: one
per cell-energy threshold whose count holds > 1% of the FP32 hits) give one
shift per component. With ``resamples`` the same event indices are bootstrapped for
both samples, which gives a confidence interval of every shift.
"""

import math

import numpy as np

from gan import physics

PROFILE_MIN_FRACTION = 0.01
"""Profile slices (layers, x or y slices) compared: > 1% of the FP32 bin-mean energy."""
SPECTRUM_THRESHOLDS_GEV = np.array([physics.HIT_THRESHOLD_GEV, 1e-3, 1e-2, 1e-1, 1.0])
"""Cell-energy thresholds of the spectrum observable: the number of cells above each (the spectrum's survival
function; counts above a threshold, unlike counts in a narrow class, barely move when energies scale by 0.5%)."""
SPECTRUM_MIN_FRACTION = 0.05
"""Spectrum thresholds compared: those whose FP32 count is > 5% of the hits (a handful of cells near a
threshold is counting noise, not a spectrum)."""
CONFIDENCE = 0.95
"""Two-sided coverage of the bootstrap interval."""
RESAMPLES = 300
"""Bootstrap resamples per energy bin."""

PAIRED_OBSERVABLES = {  # observable -> kind of shift
    "total_energy_mean": "relative",  # energy response: bin-mean E_cal
    "energy_resolution": "relative",  # relative resolution: std / mean of E_cal / E_p
    "longitudinal_profile": "relative",  # bin-mean energy per layer
    "transverse_profile_x": "relative",
    "transverse_profile_y": "relative",
    "centroid_x": "cells",
    "centroid_y": "cells",
    "centroid_z": "cells",
    "second_moment_x": "relative",
    "second_moment_y": "relative",
    "second_moment_z": "cells2",
    "hits_mean": "relative",
    "cell_energy_spectrum": "relative",  # bin-mean number of cells above 0.3 MeV, 1 MeV, 10 MeV, 0.1 GeV, 1 GeV
}
"""Observables of paired_shifts, in row order, with the kind of their shift."""

_PROFILE_AXIS = {"longitudinal_profile": "z", "transverse_profile_x": "x", "transverse_profile_y": "y"}


def _relative_shift(fp32, variant):
    """(variant - fp32) / |fp32|; 0 when both are 0, +-inf when only fp32 is (elementwise)."""
    fp32, variant = np.asarray(fp32, dtype=np.float64), np.asarray(variant, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (variant - fp32) / np.abs(fp32)
    rel = np.where(fp32 == 0, np.where(variant == 0, 0.0, np.copysign(np.inf, variant)), rel)
    rel = np.where(np.isnan(fp32) | np.isnan(variant), np.nan, rel)
    return float(rel) if rel.ndim == 0 else rel


def _nan_mean(values, axis):
    """Mean along ``axis`` ignoring NaN (NaN where all are NaN), without numpy's warning."""
    ok = ~np.isnan(values)
    n = ok.sum(axis=axis)
    total = np.where(ok, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def event_quantities(ecal, energy):
    """Per-event quantities the paired observables are statistics of: dict of (N, ...) float64 arrays."""
    ecal = physics._check_ecal(ecal)
    energy = physics._check_energy(energy, len(ecal))
    total = physics.total_energy(ecal)
    positive = np.where(energy > 0, energy, np.nan)
    above = ecal[..., None] > SPECTRUM_THRESHOLDS_GEV
    return {
        "total_energy": total,
        "sampling_fraction": total / positive,
        "longitudinal_profile": physics.longitudinal_profile(ecal),
        "transverse_profile_x": physics.transverse_profile_x(ecal),
        "transverse_profile_y": physics.transverse_profile_y(ecal),
        "moments": physics.moments(ecal, order=2).reshape(len(ecal), 6),  # x, y, z: (centroid, 2nd moment)
        "hits": physics.hits_above(ecal).astype(np.float64),
        "spectrum": above.sum(axis=(1, 2, 3)).astype(np.float64),
    }


def _resolution(sf):
    """std / mean of the sampling fraction along the last axis; 0 when the mean is 0."""
    mean = sf.mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean != 0, sf.std(axis=-1) / np.abs(mean), 0.0)


def _components(name, f):
    """Indices of the compared components of a vector observable (from the FP32 quantities of the bin)."""
    if name in _PROFILE_AXIS:
        mean = f[name].mean(axis=0)
        return np.flatnonzero(mean > PROFILE_MIN_FRACTION * mean.sum())
    if name == "cell_energy_spectrum":
        mean = f["spectrum"].mean(axis=0)
        return np.flatnonzero(mean > SPECTRUM_MIN_FRACTION * mean[0])
    return None


def _statistic(name, q, idx, components):
    """The observable of quantities ``q`` over events ``idx`` (R, n): (R, k) values."""
    if name == "total_energy_mean":
        return q["total_energy"][idx].mean(axis=-1)[:, None]
    if name == "energy_resolution":
        return _resolution(q["sampling_fraction"][idx])[:, None]
    if name in _PROFILE_AXIS:
        return q[name][:, components][idx].mean(axis=1)
    if name == "cell_energy_spectrum":
        return q["spectrum"][:, components][idx].mean(axis=1)
    if name == "hits_mean":
        return q["hits"][idx].mean(axis=-1)[:, None]
    axis, order = "xyz".index(name[-1]), 0 if name.startswith("centroid") else 1
    return _nan_mean(q["moments"][:, 2 * axis + order][idx], axis=-1)[:, None]


def _shift(name, fp32, variant):
    if PAIRED_OBSERVABLES[name] != "relative":
        return variant - fp32
    return _relative_shift(fp32, variant)


def bin_components(f, v, resamples=0, seed=0):
    """Every observable of one energy bin: name -> dict of per-component arrays.

    ``f``, ``v``: event_quantities of the bin's FP32 and variant events. Keys: "fp32", "variant", "shift" (k,),
    "index" (slice or decade of each component, None for scalars) and, with ``resamples`` > 0, "low" and "high":
    the CONFIDENCE bootstrap interval of each shift (the same resampled events for both samples).
    """
    n = len(f["total_energy"])
    full = np.arange(n)[None, :]
    boot = np.random.default_rng(seed).integers(0, n, size=(resamples, n)) if resamples and n > 1 else None
    out = {}
    for name in PAIRED_OBSERVABLES:
        comp = _components(name, f)
        fp32, variant = _statistic(name, f, full, comp)[0], _statistic(name, v, full, comp)[0]
        entry = {"fp32": fp32, "variant": variant, "shift": np.asarray(_shift(name, fp32, variant), dtype=float),
                 "index": None if comp is None else comp}
        if resamples:
            if boot is None:  # one event: no spread to resample
                entry["low"], entry["high"] = entry["shift"].copy(), entry["shift"].copy()
            else:
                shifts = np.asarray(_shift(name, _statistic(name, f, boot, comp), _statistic(name, v, boot, comp)))
                tail = 100 * (1 - CONFIDENCE) / 2
                with np.errstate(invalid="ignore"):
                    entry["low"], entry["high"] = np.percentile(shifts, [tail, 100 - tail], axis=0)
        out[name] = entry
    return out


def _check_pair(fp32_ecal, variant_ecal, energy, edges):
    fp32_ecal, variant_ecal = physics._check_ecal(fp32_ecal), physics._check_ecal(variant_ecal)
    if fp32_ecal.shape != variant_ecal.shape:
        raise ValueError(f"paired samples differ in shape: fp32 {fp32_ecal.shape}, variant {variant_ecal.shape}")
    edges = physics._check_edges(edges)
    energy = physics._check_energy(energy, len(fp32_ecal))
    return fp32_ecal, variant_ecal, energy, edges


def paired_components(fp32_ecal, variant_ecal, energy, edges=physics.DEFAULT_ENERGY_EDGES_GEV, resamples=0,
                      seed=0):
    """[(e_low, e_high, bin_components)] for every populated energy bin (events outside ``edges`` ignored)."""
    fp32_ecal, variant_ecal, energy, edges = _check_pair(fp32_ecal, variant_ecal, energy, edges)
    idx = physics.energy_bin_index(energy, edges)
    f_all, v_all = event_quantities(fp32_ecal, energy), event_quantities(variant_ecal, energy)
    out = []
    for b in np.unique(idx[idx >= 0]):
        sel = idx == b
        f = {k: x[sel] for k, x in f_all.items()}
        v = {k: x[sel] for k, x in v_all.items()}
        out.append((float(edges[b]), float(edges[b + 1]), bin_components(f, v, resamples, seed + int(b))))
    return out


def _worst_row(name, e_low, e_high, entry):
    """The component with the largest |shift| (NaN first) as one row."""
    shift = entry["shift"]
    if len(shift) == 0:
        return {"observable": name, "e_low": e_low, "e_high": e_high, "fp32": 0.0, "variant": 0.0, "shift": 0.0,
                "index": None}
    k = int(np.argmax(np.where(np.isnan(shift), np.inf, np.abs(shift))))
    row = {"observable": name, "e_low": e_low, "e_high": e_high, "fp32": float(entry["fp32"][k]),
           "variant": float(entry["variant"][k]), "shift": float(shift[k]),
           "index": None if entry["index"] is None else int(entry["index"][k])}
    if "low" in entry:
        row["low"], row["high"] = float(entry["low"][k]), float(entry["high"][k])
    return row


def paired_shifts(fp32_ecal, variant_ecal, energy, edges=physics.DEFAULT_ENERGY_EDGES_GEV):
    """Shifts of shower observables, variant vs FP32, per primary-energy bin.

    Rows (dicts) for every populated bin, observables in PAIRED_OBSERVABLES order: "observable", "e_low", "e_high"
    (GeV), "fp32", "variant" (bin-level values), "shift" and "index" (vector observables: the slice or decade of
    the largest |shift|, else None). Empty events are left out of the moments.
    """
    return [_worst_row(name, lo, hi, entry) for lo, hi, comps in paired_components(fp32_ecal, variant_ecal, energy,
                                                                                    edges)
            for name, entry in comps.items()]


def _format_shift(value, kind):
    if kind == "relative" and math.isfinite(value):
        return f"{100 * value:+.2f}%"
    return f"{value:+.4g}"


def _status(shift, tolerance):
    return "ok" if abs(shift) <= tolerance else "FAIL"  # NaN fails


def row_name(row):
    """'longitudinal_profile[z=7]', 'cell_energy_spectrum[>1 MeV]' or the plain observable."""
    name = row["observable"]
    if row.get("index") is not None and name == "cell_energy_spectrum":
        name += f"[>{1e3 * SPECTRUM_THRESHOLDS_GEV[row['index']]:g} MeV]"
    elif row.get("index") is not None:
        name += f"[{_PROFILE_AXIS.get(name, 'i')}={row['index']}]"
    return name


def format_shift_table(rows, tolerances=None):
    """Render paired_shifts rows as a plain text table.

    Columns: observable (with the slice of a profile's largest shift), E_p bin (GeV), FP32 value, variant value,
    shift (relative ones in %). With ``tolerances`` (observable -> largest allowed |shift|, same units as the
    shift) two more columns: tolerance and ok/FAIL ("-" if none given).
    """
    header = ["observable", "E_p [GeV]", "FP32", "variant", "shift"]
    if tolerances is not None:
        header += ["tolerance", "status"]
    table = [header]
    for r in rows:
        kind = PAIRED_OBSERVABLES.get(r["observable"], "")
        line = [row_name(r), f"{r['e_low']:g}-{r['e_high']:g}", f"{r['fp32']:.4g}", f"{r['variant']:.4g}",
                _format_shift(r["shift"], kind)]
        if tolerances is not None:
            tol = tolerances.get(r["observable"])
            line += (["-", "-"] if tol is None else
                     [_format_shift(tol, kind).lstrip("+"), _status(r["shift"], tol)])
        table.append(line)
    return render_table(table)


def render_table(table):
    """Rows of strings as aligned text: first column left, the others right, a rule under the header."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [line[0].ljust(widths[0]) + "  " + "  ".join(c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=False))
             for line in table]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
