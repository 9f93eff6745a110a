"""Per-event shower observables and per-energy-bin summaries (numpy only).

Conventions
-----------
* ``ecal``: array of shape (N, X, Y, Z) with cell energies in GeV
  (axes x, y, layer z; the CERN 3DGAN grid is 25 x 25 x 25). Any sizes work.
* ``energy``: array of shape (N,) with primary-particle energies in GeV.
* Positions are in cell-index units: cell centres sit at 0, 1, ..., n-1.

Sums are accumulated in float64, so results are float64 even for float32
input.
"""

import numpy as np

HIT_THRESHOLD_GEV = 3e-4
"""Default cell-energy threshold (GeV) above which a cell counts as a hit."""

CELL_SPECTRUM_BINS_GEV = np.logspace(-6, 2, 51)
"""Default cell-energy histogram edges: 50 log-spaced bins, 1e-6 to 1e2 GeV."""
CELL_SPECTRUM_BINS_GEV.flags.writeable = False

DEFAULT_ENERGY_EDGES_GEV = np.array([10.0, 50.0, 100.0, 150.0, 200.0, 250.0])
"""Default primary-energy bin edges (GeV): five bins covering 10-250 GeV."""
DEFAULT_ENERGY_EDGES_GEV.flags.writeable = False

OBSERVABLE_NAMES = (
    "total_energy",
    "sampling_fraction",
    "longitudinal_profile",
    "transverse_profile_x",
    "transverse_profile_y",
    "moments",
    "hits",
    "position_of_maximum",
)


# --------------------------------------------------------------------------
# input checks


def _check_ecal(ecal):
    """Return ``ecal`` as an array, raising ValueError unless it is 4-D."""
    ecal = np.asarray(ecal)
    if ecal.ndim != 4:
        raise ValueError(
            f"ecal must have shape (N, X, Y, Z) (4 dimensions), got shape {ecal.shape}"
        )
    return ecal


def _check_energy(energy, n_events):
    """Return ``energy`` as a float64 (N,) array matching ``n_events``."""
    energy = np.asarray(energy, dtype=np.float64)
    if energy.ndim != 1:
        raise ValueError(f"energy must be 1-D (N,), got shape {energy.shape}")
    if n_events is not None and len(energy) != n_events:
        raise ValueError(
            f"energy has {len(energy)} entries but there are {n_events} events"
        )
    return energy


def _check_edges(edges):
    """Return ``edges`` as float64, raising unless 1-D, finite, increasing."""
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2:
        raise ValueError(f"edges must be 1-D with at least 2 values, got {edges!r}")
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be finite and strictly increasing, got {edges!r}")
    return edges


# --------------------------------------------------------------------------
# per-event observables


def total_energy(ecal):
    """Total deposited energy per event, (N,) in GeV."""
    return _check_ecal(ecal).sum(axis=(1, 2, 3), dtype=np.float64)


def sampling_fraction(ecal, energy):
    """Sampling fraction E_cal / E_p per event, (N,) (dimensionless)."""
    ecal = _check_ecal(ecal)
    energy = _check_energy(energy, len(ecal))
    if not np.all(energy > 0):
        raise ValueError(f"primary energies must be > 0 GeV, got min {np.nanmin(energy) if len(energy) else 'n/a'}")
    return total_energy(ecal) / energy


def longitudinal_profile(ecal):
    """Energy per layer z, (N, Z) in GeV."""
    return _check_ecal(ecal).sum(axis=(1, 2), dtype=np.float64)


GAMMA_FIT_FRACTION = 0.1
"""Layers holding at least this fraction of a profile's peak enter its gamma fit."""


def gamma_shower_max(profiles, fraction=GAMMA_FIT_FRACTION):
    """Shower maximum t_max = (a - 1) / b of a gamma-function fit p(t) ~ t^(a-1) exp(-b t) to each row of
    (N, Z) longitudinal profiles, in layer units (layer centres at 0..Z-1, t = layer + 0.5 from the front face);
    (N,). The fit is linear in ln p (weighted by p) over the layers above ``fraction`` of the row's peak, so it
    reads the whole peak region, not one layer. NaN for a row with fewer than three such layers or no maximum.
    """
    profiles = np.asarray(profiles, dtype=np.float64)
    if profiles.ndim != 2:
        raise ValueError(f"profiles must be (N, Z), got shape {profiles.shape}")
    t = np.arange(profiles.shape[1]) + 0.5
    out = np.full(len(profiles), np.nan)
    for i, p in enumerate(profiles):
        if not np.all(np.isfinite(p)) or p.max() <= 0:
            continue
        used = p >= fraction * p.max()
        if used.sum() < 3:
            continue
        design = np.stack([np.ones(used.sum()), np.log(t[used]), -t[used]], axis=1) * p[used, None]
        _, a_minus_1, b = np.linalg.lstsq(design, np.log(p[used]) * p[used], rcond=None)[0]
        if a_minus_1 > 0 and b > 0:
            out[i] = a_minus_1 / b - 0.5
    return out


def transverse_profile_x(ecal):
    """Energy per x slice, (N, X) in GeV."""
    return _check_ecal(ecal).sum(axis=(2, 3), dtype=np.float64)


def transverse_profile_y(ecal):
    """Energy per y slice, (N, Y) in GeV."""
    return _check_ecal(ecal).sum(axis=(1, 3), dtype=np.float64)


def _profile_moments(profile, order):
    """Moments 1..order of each row of an (N, n) profile -> (N, order)."""
    tot = profile.sum(axis=1)
    valid = tot != 0
    safe_tot = np.where(valid, tot, 1.0)
    idx = np.arange(profile.shape[1], dtype=np.float64)
    out = np.empty((len(profile), order))
    mean = (profile @ idx) / safe_tot
    out[:, 0] = mean
    dev = idx[None, :] - mean[:, None]
    for k in range(2, order + 1):
        out[:, k - 1] = (profile * dev**k).sum(axis=1) / safe_tot
    out[~valid] = np.nan
    return out


def moments(ecal, order=2):
    """Energy-weighted shower moments along x, y, z, shape (N, 3, order).

    ``[:, a, 0]`` is the centroid along axis a (cell units, centres at
    0..n-1); ``[:, a, k-1]`` for k >= 2 is the k-th central moment
    sum((i - mean)**k E_i) / sum(E_i) in cells**k (CERN 3DGAN analysis
    convention). Events with zero total energy give NaN (no warning).
    """
    ecal = _check_ecal(ecal)
    if int(order) != order or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    profiles = (transverse_profile_x(ecal), transverse_profile_y(ecal),
                longitudinal_profile(ecal))
    return np.stack([_profile_moments(p, int(order)) for p in profiles], axis=1)


def hits_above(ecal, threshold=HIT_THRESHOLD_GEV):
    """Number of cells with energy > ``threshold`` (GeV) per event, (N,) int."""
    return (_check_ecal(ecal) > threshold).sum(axis=(1, 2, 3))


def cell_energy_spectrum(ecal, bins=None):
    """Histogram of positive cell energies (GeV) over all events.

    ``bins`` defaults to CELL_SPECTRUM_BINS_GEV (50 log bins, 1e-6..1e2 GeV);
    cells outside the bin range are not counted. Returns (counts, edges).
    """
    ecal = _check_ecal(ecal)
    bins = CELL_SPECTRUM_BINS_GEV if bins is None else bins
    return np.histogram(ecal[ecal > 0], bins=bins)


def position_of_maximum(ecal):
    """Indices (x, y, z) of the hottest cell per event, (N, 3) int."""
    ecal = _check_ecal(ecal)
    flat = ecal.reshape(len(ecal), int(np.prod(ecal.shape[1:]))).argmax(axis=1)
    return np.stack(np.unravel_index(flat, ecal.shape[1:]), axis=1)


def shower_observables(ecal, energy):
    """All per-event observables as a dict keyed by OBSERVABLE_NAMES.

    Moments are computed to order 2, hits with HIT_THRESHOLD_GEV.
    """
    ecal = _check_ecal(ecal)
    energy = _check_energy(energy, len(ecal))
    return {
        "total_energy": total_energy(ecal),
        "sampling_fraction": sampling_fraction(ecal, energy),
        "longitudinal_profile": longitudinal_profile(ecal),
        "transverse_profile_x": transverse_profile_x(ecal),
        "transverse_profile_y": transverse_profile_y(ecal),
        "moments": moments(ecal, order=2),
        "hits": hits_above(ecal),
        "position_of_maximum": position_of_maximum(ecal),
    }


# --------------------------------------------------------------------------
# energy binning


def energy_bin_index(energy, edges=DEFAULT_ENERGY_EDGES_GEV):
    """Energy-bin index per event, (N,) int; -1 outside the edges or NaN.

    Bins are [edges[i], edges[i+1]); the last bin also includes edges[-1].
    """
    energy = _check_energy(energy, None)
    edges = _check_edges(edges)
    n_bins = len(edges) - 1
    idx = np.searchsorted(edges, energy, side="right") - 1
    idx[energy == edges[-1]] = n_bins - 1
    idx[(idx < 0) | (idx >= n_bins)] = -1
    return idx


def _nan_mean_std(v):
    """Mean and population std over axis 0 ignoring NaN; NaN where empty."""
    ok = ~np.isnan(v)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).sum(axis=0) / n
        var = np.where(ok, (v - mean) ** 2, 0.0).sum(axis=0) / n
    return mean, np.sqrt(var)


def binned_mean_std(values, energy, edges=DEFAULT_ENERGY_EDGES_GEV):
    """Mean and std of per-event ``values`` in each primary-energy bin.

    ``values`` is (N,) or (N, ...); statistics are over the event axis, NaN
    entries ignored. Returns (mean, std, count): mean/std of shape
    (B, ...), NaN for empty bins; count (B,) = events in each bin.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim < 1:
        raise ValueError("values must have an event axis, got a scalar")
    energy = _check_energy(energy, len(values))
    idx = energy_bin_index(energy, edges)
    n_bins = len(edges) - 1
    mean = np.full((n_bins,) + values.shape[1:], np.nan)
    std = np.full_like(mean, np.nan)
    count = np.zeros(n_bins, dtype=np.int64)
    for b in range(n_bins):
        sel = values[idx == b]
        count[b] = len(sel)
        mean[b], std[b] = _nan_mean_std(sel)
    return mean, std, count


# --------------------------------------------------------------------------
# summaries


def physics_summary(ecal, energy, edges=DEFAULT_ENERGY_EDGES_GEV):
    """One dict per energy bin with headline shower statistics.

    Keys: e_low, e_high (GeV), count, sf_mean, sf_std (E_cal/E_p),
    e_cal_mean (GeV), hits_mean, shower_max_layer (argmax of the bin-mean
    longitudinal profile; -1 if empty), z_centroid_mean (layers),
    x_width_mean, y_width_mean (mean per-event sqrt of the 2nd central
    moment, cells). Statistics of empty bins are NaN.
    """
    edges = _check_edges(edges)
    obs = shower_observables(ecal, energy)
    mom = obs["moments"]
    with np.errstate(invalid="ignore"):
        widths = np.sqrt(mom[:, :2, 1])

    def bin_mean(values):
        return binned_mean_std(values, energy, edges)[0]

    sf_mean, sf_std, count = binned_mean_std(obs["sampling_fraction"], energy, edges)
    e_cal, hits = bin_mean(obs["total_energy"]), bin_mean(obs["hits"])
    profile = bin_mean(obs["longitudinal_profile"])
    z_c, w = bin_mean(mom[:, 2, 0]), bin_mean(widths)
    rows = []
    for b in range(len(edges) - 1):
        rows.append({
            "e_low": float(edges[b]), "e_high": float(edges[b + 1]),
            "count": int(count[b]),
            "sf_mean": float(sf_mean[b]), "sf_std": float(sf_std[b]),
            "e_cal_mean": float(e_cal[b]), "hits_mean": float(hits[b]),
            "shower_max_layer": int(np.argmax(profile[b])) if count[b] else -1,
            "z_centroid_mean": float(z_c[b]),
            "x_width_mean": float(w[b, 0]), "y_width_mean": float(w[b, 1]),
        })
    return rows


_SUMMARY_COLUMNS = (  # (key, header, format)
    ("count", "N", "d"),
    ("sf_mean", "E_cal/E_p", ".4f"),
    ("sf_std", "sf std", ".4f"),
    ("e_cal_mean", "<E_cal> [GeV]", ".2f"),
    ("hits_mean", "<hits>", ".1f"),
    ("shower_max_layer", "max layer [z]", "d"),
    ("z_centroid_mean", "<z> [layer]", ".2f"),
    ("x_width_mean", "<sx> [cell]", ".3f"),
    ("y_width_mean", "<sy> [cell]", ".3f"),
)


def _summary_cell(row, key, fmt):
    return "-" if row["count"] == 0 and key != "count" else format(row[key], fmt)


def format_summary(rows):
    """Render physics_summary rows as a plain right-aligned text table."""
    header = ["E_p [GeV]"] + [h for _, h, _ in _SUMMARY_COLUMNS]
    table = [header] + [[f"{r['e_low']:g}-{r['e_high']:g}"] + [_summary_cell(r, k, f) for k, _, f in _SUMMARY_COLUMNS]
                        for r in rows]
    return _render(table)


def format_comparison(candidate_rows, reference_rows):
    """Two physics_summary row lists (same bins) side by side: each cell reads 'candidate / reference'."""
    header = ["E_p [GeV]"] + [h for _, h, _ in _SUMMARY_COLUMNS]
    table = [header]
    for c, r in zip(candidate_rows, reference_rows, strict=True):
        table.append([f"{c['e_low']:g}-{c['e_high']:g}"] + [
            f"{_summary_cell(c, k, f)} / {_summary_cell(r, k, f)}" for k, _, f in _SUMMARY_COLUMNS])
    return _render(table)


def _render(table):
    header = table[0]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=False)) for line in table]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Geant4's cost per energy bin (the speed-up over Geant4 of the report and the benchmarks)


def geant4_cpu_per_bin(energy, cpu_s, edges) -> list[dict]:
    """Median Geant4 CPU seconds per event in every energy bin of ``edges`` (GeV).

    The one binning rule of the project (:func:`energy_bin_index`): bins are [low, high), the last one includes its
    high edge, events outside are left out. Every bin gets a row (``e_low``, ``e_high``, ``events``, ``median_s``);
    an empty bin has ``median_s`` None.
    """
    energy = np.asarray(energy, dtype=np.float64)
    cpu_s = np.asarray(cpu_s, dtype=np.float64)
    if energy.shape != cpu_s.shape or energy.ndim != 1:
        raise ValueError(f"energy {energy.shape} and Geant4 CPU seconds {cpu_s.shape} differ in shape")
    edges = _check_edges(edges)
    idx = energy_bin_index(energy, edges)
    rows = []
    for b in range(len(edges) - 1):
        selected = cpu_s[idx == b]
        rows.append({"e_low": float(edges[b]), "e_high": float(edges[b + 1]), "events": int(selected.size),
                     "median_s": float(np.median(selected)) if selected.size else None})
    return rows


def speedup_over_geant4(per_bin: list[dict], seconds_per_shower: float, threads: int) -> list[dict]:
    """Each row of :func:`geant4_cpu_per_bin` with the GAN's core-seconds per shower (wall seconds per shower x
    ``threads``: at most that many cores) and the speed-up per core, median Geant4 s/event over it (None: empty bin)."""
    if not seconds_per_shower > 0 or threads < 1:
        raise ValueError(f"need seconds per shower > 0 and threads >= 1, got {seconds_per_shower}, {threads}")
    core_s = seconds_per_shower * threads
    return [{**row, "gan_core_s_per_shower": core_s,
             "speedup": None if row["median_s"] is None else row["median_s"] / core_s} for row in per_bin]
