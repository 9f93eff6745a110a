"""Single-number shower-accuracy metric (numpy only).

Follows the CERN 3DGAN validation (Rehm et al.): per primary-energy bin,
compare bin-mean shower moments and bin-mean energy profiles of a
candidate sample (e.g. a reduced-precision generator) against a reference
sample. Lower is better; identical samples score exactly 0.
"""

import numpy as np

from gan import physics
from gan.physics import DEFAULT_ENERGY_EDGES_GEV

_FLOOR = 1e-12  # denominator floor for degenerate (zero) reference values
_PROFILES = (physics.transverse_profile_x, physics.transverse_profile_y,
             physics.longitudinal_profile)


CONVENTIONS = ("ours", "cern")
"""ours: profile term = energy-weighted relative L1 of the bin-mean profiles (empty reference slices cannot blow
it up), moment term once. cern: CERN 3DGAN ``GANutils.metric``: profile term = mean over slices of the per-slice
relative error |p_ref - p_cand| / p_ref (inf or NaN where a reference slice is empty), and the moment term added
twice (its loop body repeats the moment block)."""


def shower_events(ecal):
    """Per-event inputs of the metric: moments (N, 3, 2) and the x, y, z profiles."""
    ecal = physics._check_ecal(ecal)
    return {"moments": physics.moments(ecal, 2), "profiles": [f(ecal) for f in _PROFILES]}


def events_from_summary(summary):
    """The metric's per-event inputs from gan.paired.event_quantities (moments flattened to (N, 6))."""
    return {"moments": np.asarray(summary["moments"]).reshape(-1, 3, 2),
            "profiles": [summary["transverse_profile_x"], summary["transverse_profile_y"],
                         summary["longitudinal_profile"]]}


def _bin_means(events, energy, edges):
    """Bin means of moments (B, 3, 2), of the x/y/z profiles, and counts."""
    mom_mean, _, count = physics.binned_mean_std(events["moments"], energy, edges)
    profiles = [physics.binned_mean_std(p, energy, edges)[0] for p in events["profiles"]]
    return mom_mean, profiles, count


def _worst_if_nan(x):
    """Map NaN (undefined comparison) to +inf, i.e. the worst score."""
    return float("inf") if np.isnan(x) else float(x)


def _moment_error(ref, cand):
    """Mean of |cand - ref| / |ref| over axes and orders (one bin)."""
    err = np.abs(cand - ref) / np.maximum(np.abs(ref), _FLOOR)
    return _worst_if_nan(err.mean())


def _profile_error(refs, cands):
    """Mean over x, y, z of the relative L1 profile error (one bin)."""
    errs = [np.abs(c - r).sum() / max(r.sum(), _FLOOR) for r, c in zip(refs, cands, strict=True)]
    return _worst_if_nan(np.mean(errs))


def _cern_profile_error(refs, cands):
    """GANutils.metric: mean over x, y, z of the mean over slices of |p_ref - p_cand| / p_ref (one bin)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        errs = [np.mean(np.abs((r - c) / r)) for r, c in zip(refs, cands, strict=True)]
    return _worst_if_nan(np.mean(errs))


def accuracy_metric(ref_ecal, ref_energy, cand_ecal, cand_energy,
                    edges=DEFAULT_ENERGY_EDGES_GEV, convention="ours"):
    """Compare a candidate shower sample with a reference sample.

    Inputs as in gan.physics: ecal (N, X, Y, Z) in GeV, energy (N,) in GeV;
    both samples must share the cell grid. For every energy bin populated
    by both samples:

    * moment_error: mean over axes x, y, z and orders 1, 2 of
      |m_cand - m_ref| / |m_ref|, with m the bin-mean moment;
    * profile_error: mean over x, y, z of sum|p_cand - p_ref| / sum p_ref,
      with p the bin-mean energy profile.

    Undefined moments (a bin whose events all have zero energy) count as an
    infinite error. Returns a dict with "moment_error", "profile_error",
    "total" (their sum; all averaged over bins), "per_bin" (list of dicts:
    e_low, e_high [GeV], n_ref, n_cand, moment_error, profile_error) and
    "bins_used". Raises ValueError if no bin is populated by both samples.
    ``convention``: see CONVENTIONS ("cern": CERN's profile term and its moment term counted twice).
    """
    ref_ecal, cand_ecal = physics._check_ecal(ref_ecal), physics._check_ecal(cand_ecal)
    if ref_ecal.shape[1:] != cand_ecal.shape[1:]:
        raise ValueError(
            f"cell grids differ: reference {ref_ecal.shape[1:]}, "
            f"candidate {cand_ecal.shape[1:]}"
        )
    return accuracy_metric_from_events(shower_events(ref_ecal), ref_energy, shower_events(cand_ecal), cand_energy,
                                       edges, convention)


def accuracy_metric_from_events(ref_events, ref_energy, cand_events, cand_energy, edges=DEFAULT_ENERGY_EDGES_GEV,
                                convention="ours"):
    """:func:`accuracy_metric` from per-event inputs (:func:`shower_events` or :func:`events_from_summary`)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r} (known: {', '.join(CONVENTIONS)})")
    profile_error = _cern_profile_error if convention == "cern" else _profile_error
    edges = physics._check_edges(edges)
    ref_mom, ref_prof, n_ref = _bin_means(ref_events, ref_energy, edges)
    cand_mom, cand_prof, n_cand = _bin_means(cand_events, cand_energy, edges)
    per_bin = []
    for b in np.flatnonzero((n_ref > 0) & (n_cand > 0)):
        per_bin.append({
            "e_low": float(edges[b]), "e_high": float(edges[b + 1]),
            "n_ref": int(n_ref[b]), "n_cand": int(n_cand[b]),
            "moment_error": _moment_error(ref_mom[b], cand_mom[b]),
            "profile_error": profile_error([p[b] for p in ref_prof], [p[b] for p in cand_prof]),
        })
    if not per_bin:
        raise ValueError(
            f"no energy bin (edges {edges.tolist()} GeV) is populated by both samples"
        )
    moment = float(np.mean([r["moment_error"] for r in per_bin])) * (2 if convention == "cern" else 1)
    profile = float(np.mean([r["profile_error"] for r in per_bin]))
    return {"moment_error": moment, "profile_error": profile,
            "total": moment + profile, "per_bin": per_bin, "bins_used": len(per_bin)}


def higher_is_better(metric_total):
    """Map a total error (>= 0, lower is better) to 1 / (1 + total) in (0, 1]."""
    total = float(metric_total)
    if np.isnan(total) or total < 0:
        raise ValueError(f"metric_total must be a number >= 0, got {metric_total!r}")
    return 1.0 / (1.0 + total)
