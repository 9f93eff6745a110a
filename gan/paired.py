"""Paired checks: a reduced-precision variant against its FP32 model, event by event.

Both shower samples come from the same latent vectors and primary energies,
so event i of ``variant_ecal`` is the variant's version of event i of
``fp32_ecal``. Conventions as in gan.physics: ecal (N, X, Y, Z) in GeV,
energy (N,) in GeV, positions in cells (z: layers).

Sign convention: every shift is variant minus FP32, either absolute
(``cells``), relative to the FP32 value (``relative``: (variant - fp32) /
|fp32|; 0/0 gives 0, x/0 gives +-inf), or a distance that is >= 0
(``fraction``, ``separation_power``; these rows report fp32 = 0 and
variant = shift).
"""

import math

import numpy as np

from gan import physics
from gan.distances import separation_power

PROFILE_MIN_FRACTION = 0.01
"""Profile slices (layers, x or y slices) compared: > 1% of the FP32 bin-mean energy."""

PAIRED_OBSERVABLES = {  # observable -> kind of shift
    "total_energy_mean": "relative",
    "total_energy_std": "relative",
    "longitudinal_profile": "relative",
    "transverse_profile_x": "relative",
    "transverse_profile_y": "relative",
    "centroid_x": "cells",
    "centroid_y": "cells",
    "centroid_z": "cells",
    "second_moment_x": "relative",
    "second_moment_y": "relative",
    "second_moment_z": "relative",
    "hits_mean": "relative",
    "position_of_maximum_changed": "fraction",
    "cell_energy_spectrum": "separation_power",
}
"""Observables of paired_shifts, in row order, with the kind of their shift."""

_PROFILE_AXIS = {"longitudinal_profile": "z", "transverse_profile_x": "x",
                 "transverse_profile_y": "y"}


def _relative_shift(fp32, variant):
    """(variant - fp32) / |fp32|; 0 when both are 0, +-inf when only fp32 is."""
    if math.isnan(fp32) or math.isnan(variant):
        return float("nan")
    if fp32 == 0:
        return 0.0 if variant == 0 else math.copysign(math.inf, variant)
    return (variant - fp32) / abs(fp32)


def _mean_ignoring_nan(values):
    """Mean over axis 0 ignoring NaN (NaN where a column is all NaN)."""
    ok = ~np.isnan(values)
    n = ok.sum(axis=0)
    total = np.where(ok, values, 0.0).sum(axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _event_observables(ecal):
    """Per-event observables used by the paired checks."""
    return {
        "total_energy": physics.total_energy(ecal),
        "longitudinal_profile": physics.longitudinal_profile(ecal),
        "transverse_profile_x": physics.transverse_profile_x(ecal),
        "transverse_profile_y": physics.transverse_profile_y(ecal),
        "moments": physics.moments(ecal, order=2),
        "hits": physics.hits_above(ecal).astype(np.float64),
        "position_of_maximum": physics.position_of_maximum(ecal),
    }


def _row(observable, fp32, variant, shift, index=None):
    return {"observable": observable, "fp32": float(fp32), "variant": float(variant),
            "shift": float(shift), "index": index}


def _profile_row(observable, fp32_profiles, variant_profiles):
    """Largest relative shift of the bin-mean profile over slices > 1% of the energy."""
    f, v = fp32_profiles.mean(axis=0), variant_profiles.mean(axis=0)
    slices = np.flatnonzero(f > PROFILE_MIN_FRACTION * f.sum())
    if len(slices) == 0:
        return _row(observable, 0.0, 0.0, 0.0)
    rel = (v[slices] - f[slices]) / f[slices]
    k = int(np.argmax(np.abs(rel)))
    return _row(observable, f[slices[k]], v[slices[k]], rel[k], int(slices[k]))


def _spectrum_distance(fp32_ecal, variant_ecal):
    """Separation power of the cell-energy spectra (1 if only one is empty)."""
    f, _ = physics.cell_energy_spectrum(fp32_ecal)
    v, _ = physics.cell_energy_spectrum(variant_ecal)
    if f.sum() == 0 or v.sum() == 0:
        return 0.0 if f.sum() == v.sum() else 1.0
    return separation_power(f, v)


def _relative_row(observable, fp32, variant):
    fp32, variant = float(fp32), float(variant)
    return _row(observable, fp32, variant, _relative_shift(fp32, variant))


def _bin_rows(f, v, fp32_ecal, variant_ecal):
    """Rows for one energy bin from per-event observables f, v of its events."""
    rows = [
        _relative_row("total_energy_mean", f["total_energy"].mean(), v["total_energy"].mean()),
        _relative_row("total_energy_std", f["total_energy"].std(), v["total_energy"].std()),
    ]
    rows += [_profile_row(name, f[name], v[name]) for name in _PROFILE_AXIS]
    f_mom, v_mom = _mean_ignoring_nan(f["moments"]), _mean_ignoring_nan(v["moments"])
    for a, axis in enumerate("xyz"):
        rows.append(_row(f"centroid_{axis}", f_mom[a, 0], v_mom[a, 0], v_mom[a, 0] - f_mom[a, 0]))
    for a, axis in enumerate("xyz"):
        rows.append(_relative_row(f"second_moment_{axis}", f_mom[a, 1], v_mom[a, 1]))
    rows.append(_relative_row("hits_mean", f["hits"].mean(), v["hits"].mean()))
    moved = np.any(f["position_of_maximum"] != v["position_of_maximum"], axis=1).mean()
    rows.append(_row("position_of_maximum_changed", 0.0, moved, moved))
    spectrum = _spectrum_distance(fp32_ecal, variant_ecal)
    rows.append(_row("cell_energy_spectrum", 0.0, spectrum, spectrum))
    return rows


def paired_shifts(fp32_ecal, variant_ecal, energy, edges=physics.DEFAULT_ENERGY_EDGES_GEV):
    """Shifts of shower observables, variant vs FP32, per primary-energy bin.

    Rows (dicts) for every populated bin, observables in PAIRED_OBSERVABLES
    order: "observable", "e_low", "e_high" (GeV), "fp32", "variant"
    (bin-level values), "shift" (see the module docstring for its sign and
    kind) and "index" (profiles: the slice with the largest shift, else
    None). Profile rows report the largest relative shift of the bin-mean
    profile over slices holding > 1% of the FP32 energy; centroid rows the
    shift of the bin-mean first moment (cells); second-moment rows the
    relative shift of the bin-mean second central moment. Events outside
    ``edges`` are ignored; empty events are left out of the moments.
    """
    fp32_ecal, variant_ecal = physics._check_ecal(fp32_ecal), physics._check_ecal(variant_ecal)
    if fp32_ecal.shape != variant_ecal.shape:
        raise ValueError(f"paired samples differ in shape: fp32 {fp32_ecal.shape}, "
                         f"variant {variant_ecal.shape}")
    edges = physics._check_edges(edges)
    idx = physics.energy_bin_index(physics._check_energy(energy, len(fp32_ecal)), edges)
    f_obs, v_obs = _event_observables(fp32_ecal), _event_observables(variant_ecal)
    rows = []
    for b in np.unique(idx[idx >= 0]):
        sel = idx == b
        f = {k: x[sel] for k, x in f_obs.items()}
        v = {k: x[sel] for k, x in v_obs.items()}
        for row in _bin_rows(f, v, fp32_ecal[sel], variant_ecal[sel]):
            rows.append({"observable": row.pop("observable"), "e_low": float(edges[b]),
                         "e_high": float(edges[b + 1]), **row})
    return rows


def _format_shift(value, kind):
    if kind == "relative" and math.isfinite(value):
        return f"{100 * value:+.2f}%"
    return f"{value:+.4g}"


def _status(shift, tolerance):
    return "ok" if abs(shift) <= tolerance else "FAIL"  # NaN fails


def format_shift_table(rows, tolerances=None):
    """Render paired_shifts rows as a plain text table.

    Columns: observable (with the slice of a profile's largest shift),
    E_p bin (GeV), FP32 value, variant value, shift (relative ones in %).
    With ``tolerances`` (observable -> largest allowed |shift|, same units as
    the shift) two more columns: tolerance and ok/FAIL ("-" if none given).
    """
    header = ["observable", "E_p [GeV]", "FP32", "variant", "shift"]
    if tolerances is not None:
        header += ["tolerance", "status"]
    table = [header]
    for r in rows:
        kind = PAIRED_OBSERVABLES.get(r["observable"], "")
        name = r["observable"]
        if r.get("index") is not None:
            name += f"[{_PROFILE_AXIS.get(name, 'i')}={r['index']}]"
        line = [name, f"{r['e_low']:g}-{r['e_high']:g}", f"{r['fp32']:.4g}",
                f"{r['variant']:.4g}", _format_shift(r["shift"], kind)]
        if tolerances is not None:
            tol = tolerances.get(r["observable"])
            line += (["-", "-"] if tol is None else
                     [_format_shift(tol, kind).lstrip("+"), _status(r["shift"], tol)])
        table.append(line)
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [line[0].ljust(widths[0]) + "  " +
             "  ".join(c.rjust(w) for c, w in zip(line[1:], widths[1:])) for line in table]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
