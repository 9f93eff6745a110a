"""Distances between a reference and a candidate shower sample (numpy only).

Per feature: separation power of fixed-binning histograms and the 1-D
Wasserstein distance W1. On the whole feature vector (gan.features): the
Fréchet and kernel physics distances FPD and KPD of Kansal et al. 2023
(JetNet), computed on features standardised with the reference's mean and
std. The distances are 0 (FPD, KPD: about 0; KPD may dip below 0) for
samples from the same distribution and grow as they part; FPD and KPD draw
random subsets from a seeded generator (``seed``: int or numpy Generator).
"""

import numpy as np

from gan import features

N_BINS = 30
"""Regular bins spanning the reference's min to max (plus under/overflow)."""
ROUNDING_STD = 1e-12
"""A std <= ROUNDING_STD |mean| is rounding noise of a constant sample."""
CONSTANT_BIN_HALF_WIDTH = 1e-6
"""Half width of the one bin of a constant reference, relative (floor: 1 unit)."""

FPD_N_SIZES = 5
"""Subset sizes N_i for the FPD 1/N extrapolation (min_n .. full sample)."""
FPD_N_DRAWS = 10
"""Random subsets drawn per size for the FPD extrapolation."""
FPD_MIN_FRACTION = 0.2
"""Default smallest subset, as a fraction of the smaller sample."""

KPD_DEGREE = 3
"""Degree of the polynomial kernel k(x, y) = (x.y / d + 1) ** degree."""
KPD_N_BATCHES = 10
"""Subset batches over which the KPD median and spread are taken."""
KPD_BATCH_SIZE = 1000
"""Events per sample in each KPD batch (capped at half the smaller sample)."""

SEED = 0
"""Default seed of the random subsets of FPD and KPD."""


# --------------------------------------------------------------------------
# 1-D distances per feature


def _as_finite_1d(values, what):
    """``values`` as a non-empty finite float64 1-D array, else ValueError."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} contains NaN or inf")
    return values


def separation_power(h1, h2):
    """Separation power S = 1/2 sum (p - q)^2 / (p + q) of two histograms.

    ``h1``, ``h2``: same-shape counts or densities (>= 0), each normalised
    to unit sum here; bins empty in both are skipped. S is in [0, 1]: 0 for
    identical shapes, 1 for disjoint ones. ValueError for an empty (zero-sum),
    negative, non-finite or mismatched histogram.
    """
    p, q = np.asarray(h1, dtype=np.float64), np.asarray(h2, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"histograms differ in shape: {p.shape} vs {q.shape}")
    for name, h in (("h1", p), ("h2", q)):
        if not np.all(np.isfinite(h)) or np.any(h < 0):
            raise ValueError(f"histogram {name} must be finite and >= 0")
        if h.sum() <= 0:
            raise ValueError(f"histogram {name} is empty (sums to 0)")
    p, q = p / p.sum(), q / q.sum()
    both = (p + q) > 0
    s = 0.5 * np.sum((p[both] - q[both]) ** 2 / (p[both] + q[both]))
    return float(min(max(s, 0.0), 1.0))


def reference_bin_edges(ref_values, n_bins=N_BINS):
    """Bin edges from the reference only: ``n_bins`` (>= 2) regular bins.

    The first and last bins are centred on the reference's min and max, so
    rounding-level changes of the extreme values stay in their bins. A
    constant reference v gets the single bin v +- CONSTANT_BIN_HALF_WIDTH
    max(|v|, 1).
    """
    ref = _as_finite_1d(ref_values, "reference values")
    if int(n_bins) < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins!r}")
    lo, hi = ref.min(), ref.max()
    if hi > lo:
        width = (hi - lo) / (int(n_bins) - 1)
        return lo + width * (np.arange(int(n_bins) + 1) - 0.5)
    half = CONSTANT_BIN_HALF_WIDTH * max(abs(lo), 1.0)
    return np.array([lo - half, lo + half])


def histogram_with_overflow(values, edges):
    """Counts in [underflow, bins of ``edges`` (last one closed), overflow]."""
    values = _as_finite_1d(values, "values")
    idx = np.searchsorted(edges, values, side="right")
    idx[values == edges[-1]] = len(edges) - 1
    return np.bincount(idx, minlength=len(edges) + 1)


def feature_separation_power(ref_values, cand_values, n_bins=N_BINS):
    """Separation power of one feature, binned on the reference's range.

    Both samples are histogrammed with reference_bin_edges(ref_values,
    n_bins) plus an underflow and an overflow bin, so candidate mass outside
    the reference range counts fully.
    """
    edges = reference_bin_edges(ref_values, n_bins)
    return separation_power(histogram_with_overflow(ref_values, edges),
                            histogram_with_overflow(cand_values, edges))


def wasserstein_1(ref_values, cand_values):
    """1-D Wasserstein (earth mover's) distance, in the feature's units.

    The integral of |F_ref - F_cand| over the empirical CDFs (the same as
    scipy.stats.wasserstein_distance, without its import cost).
    """
    ref = np.sort(_as_finite_1d(ref_values, "reference values"))
    cand = np.sort(_as_finite_1d(cand_values, "candidate values"))
    points = np.sort(np.concatenate([ref, cand]))
    cdf_ref = np.searchsorted(ref, points[:-1], side="right") / len(ref)
    cdf_cand = np.searchsorted(cand, points[:-1], side="right") / len(cand)
    return float(np.sum(np.abs(cdf_ref - cdf_cand) * np.diff(points)))


def _std_or_zero(values, axis=None):
    """Population std; 0 where it is only rounding noise (<= 1e-12 |mean|)."""
    mean, std = values.mean(axis=axis), values.std(axis=axis)
    return np.where(std > ROUNDING_STD * np.abs(mean), std, 0.0)


def normalised_wasserstein_1(ref_values, cand_values):
    """W1 divided by the reference's std, so features are comparable.

    A constant reference (std 0) is scaled by the pooled std instead; two
    identical constant samples give 0.
    """
    ref = _as_finite_1d(ref_values, "reference values")
    cand = _as_finite_1d(cand_values, "candidate values")
    w1 = wasserstein_1(ref, cand)
    scale = _std_or_zero(ref)
    if scale == 0:
        scale = _std_or_zero(np.concatenate([ref, cand]))
    return float(w1 / scale) if scale > 0 else 0.0


# --------------------------------------------------------------------------
# multivariate distances (FPD, KPD)


def _as_feature_matrix(values, what):
    """``values`` as a finite float64 (N, F) array with N >= 2."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or len(values) < 2:
        raise ValueError(f"{what} must be (N, F) with N >= 2, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} contains NaN or inf")
    return values


def standardise(ref_features, cand_features):
    """Both samples scaled with the reference's mean and std (std 0 -> 1).

    A std at rounding level (<= ROUNDING_STD |mean|) counts as 0.
    """
    ref = _as_feature_matrix(ref_features, "reference features")
    cand = _as_feature_matrix(cand_features, "candidate features")
    if ref.shape[1] != cand.shape[1]:
        raise ValueError(f"feature counts differ: {ref.shape[1]} vs {cand.shape[1]}")
    mean, std = ref.mean(axis=0), _std_or_zero(ref, axis=0)
    std = np.where(std > 0, std, 1.0)
    return (ref - mean) / std, (cand - mean) / std


def _gram_root(x):
    """(k, F) matrix R with R.T @ R = (N - 1) cov(x), from a QR of the centred x."""
    return np.linalg.qr(x - x.mean(axis=0), mode="r")


def frechet_distance(x, y):
    """Fréchet distance between Gaussians fitted to samples x (N, F), y (M, F).

    |mu_x - mu_y|^2 + tr(C_x + C_y - 2 (C_x C_y)^(1/2)) with unbiased sample
    covariances. With C_x = A A^T and C_y = B B^T, tr (C_x C_y)^(1/2) is the
    sum of the singular values of A^T B (exact, real, also for singular
    covariances), so no matrix square root (scipy.linalg.sqrtm) is needed.
    """
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"need >= 2 events per sample, got {len(x)} and {len(y)}")
    rx, ry = _gram_root(x), _gram_root(y)
    dof = (len(x) - 1) * (len(y) - 1)
    trace_root = np.linalg.svd(rx @ ry.T, compute_uv=False).sum() / np.sqrt(dof)
    trace_x = np.sum(rx**2) / (len(x) - 1)
    trace_y = np.sum(ry**2) / (len(y) - 1)
    diff = x.mean(axis=0) - y.mean(axis=0)
    value = diff @ diff + trace_x + trace_y - 2.0 * trace_root
    return float(max(value, 0.0))  # clip round-off below 0


def _fit_inverse_n(sizes, values):
    """Least-squares fit values = c + a / n: (c, standard error of c)."""
    design = np.column_stack([np.ones(len(sizes)), 1.0 / np.asarray(sizes, dtype=np.float64)])
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    dof = len(values) - 2
    resid = values - design @ coef
    sigma2 = resid @ resid / dof if dof > 0 else 0.0
    cov = sigma2 * np.linalg.pinv(design.T @ design)
    return float(coef[0]), float(np.sqrt(max(cov[0, 0], 0.0)))


def subset_sizes(n_max, min_n=None, n_sizes=FPD_N_SIZES):
    """``n_sizes`` distinct subset sizes evenly spaced from min_n to n_max."""
    if min_n is None:
        min_n = int(FPD_MIN_FRACTION * n_max)
    min_n = max(2, min(int(min_n), n_max))
    return np.unique(np.linspace(min_n, n_max, n_sizes).astype(np.int64))


def frechet_physics_distance(ref_features, cand_features, min_n=None,
                             n_sizes=FPD_N_SIZES, n_draws=FPD_N_DRAWS, seed=SEED):
    """FPD extrapolated to infinite sample size: (value, uncertainty).

    Features are standardised with the reference's mean/std. For n_sizes
    subset sizes N_i from ``min_n`` (default FPD_MIN_FRACTION of the smaller
    sample) to the smaller sample's size, the Fréchet distance of ``n_draws``
    random subsets (without replacement, seeded) is fitted with
    FPD(N) = FPD_inf + a / N. Returns FPD_inf clipped at 0 (it can fit
    slightly below 0 when the samples agree) and its least-squares standard
    error (dimensionless: squared units of the reference std). The error
    reflects the subset scatter only, not the finite size of the full
    samples themselves; with a single subset size it is NaN.
    """
    ref, cand = standardise(ref_features, cand_features)
    rng = np.random.default_rng(seed)
    sizes, values = [], []
    for n in subset_sizes(min(len(ref), len(cand)), min_n, n_sizes):
        for _ in range(n_draws):
            x = ref[rng.choice(len(ref), n, replace=False)]
            y = cand[rng.choice(len(cand), n, replace=False)]
            sizes.append(n)
            values.append(frechet_distance(x, y))
    if len(set(sizes)) < 2:
        return max(float(np.mean(values)), 0.0), float("nan")
    value, error = _fit_inverse_n(sizes, np.array(values))
    return max(value, 0.0), error


def mmd2_polynomial(x, y, degree=KPD_DEGREE):
    """Unbiased MMD^2 of samples x (m, d), y (n, d) with a polynomial kernel.

    k(a, b) = (a.b / d + 1) ** degree; needs m, n >= 2.
    """
    d = x.shape[1]

    def kernel(a, b):
        return (a @ b.T / d + 1.0) ** degree

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    m, n = len(x), len(y)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2.0 * kxy.mean())


def kernel_physics_distance(ref_features, cand_features, batch_size=KPD_BATCH_SIZE,
                            n_batches=KPD_N_BATCHES, degree=KPD_DEGREE, seed=SEED):
    """KPD: (median, uncertainty) of the unbiased polynomial-kernel MMD^2.

    Features are standardised with the reference's mean/std; ``n_batches``
    random subsets of ``batch_size`` events per sample (without replacement,
    seeded; capped at half the smaller sample so that batches differ) each
    give one MMD^2. The uncertainty is half the 16-84 % range over batches
    (as in JetNet). Values scatter around 0 (also below) for identical
    distributions (dimensionless, as the standardised features).
    """
    ref, cand = standardise(ref_features, cand_features)
    rng = np.random.default_rng(seed)
    n = min(int(batch_size), max(2, min(len(ref), len(cand)) // 2))
    vals = [mmd2_polynomial(ref[rng.choice(len(ref), n, replace=False)],
                            cand[rng.choice(len(cand), n, replace=False)], degree)
            for _ in range(n_batches)]
    low, high = np.percentile(vals, [16.0, 84.0])
    return float(np.median(vals)), float(0.5 * (high - low))


# --------------------------------------------------------------------------
# summary table


CONVENTIONS = ("ours", "calochallenge", "jetnet")
"""ours: separation power with under/overflow bins, KPD degree 3 on z-scored features without replacement, FPD
z-scored with a 1/N fit over FPD_N_SIZES sizes. calochallenge: separation power as CaloChallenge's
``_separation_power`` (density histograms on the same bins: values outside the reference range dropped, NaN when
none remain). jetnet: FPD and KPD as JetNet's ``gen_metrics`` (features divided by the reference's max |value|,
batches drawn with replacement; KPD kernel degree 4; FPD: 10 sizes regular in 1/N, 20 batches each, fit with
intercept and slope >= 0), at batch sizes scaled to the samples (JetNet's defaults assume 50,000 events)."""


def calochallenge_separation_power(ref_values, cand_values, n_bins=N_BINS):
    """CaloChallenge's separation power on reference-range bins: out-of-range values are dropped."""
    edges = reference_bin_edges(ref_values, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        h1 = np.histogram(_as_finite_1d(ref_values, "reference values"), edges, density=True)[0] * np.diff(edges)
        h2 = np.histogram(_as_finite_1d(cand_values, "candidate values"), edges, density=True)[0] * np.diff(edges)
    return float(0.5 * np.sum((h1 - h2) ** 2 / (h1 + h2 + 1e-16)))


def max_scaled(ref, cand):
    """JetNet's normalisation: both divided by the reference's max |value| per feature (1 where it is 0)."""
    maximum = np.max(np.abs(ref), axis=0)
    maximum[maximum == 0] = 1
    return ref / maximum, cand / maximum


def _nonnegative_line_fit(x, y):
    """Least squares y = c + a x with c, a >= 0 (as scipy's bounded curve_fit finds it): (c, a)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    c, a = np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), y, rcond=None)[0]
    if c >= 0 and a >= 0:
        return float(c), float(a)
    candidates = [(max(float(np.mean(y)), 0.0), 0.0)]
    slope = float(x @ y / (x @ x)) if x @ x > 0 else 0.0
    candidates.append((0.0, max(slope, 0.0)))
    return min(candidates, key=lambda p: float(np.sum((y - p[0] - p[1] * x) ** 2)))


def jetnet_fpd(ref_features, cand_features, min_samples, max_samples, num_batches=20, num_points=10, seed=42):
    """JetNet's FPD (max-scaled, with replacement, 1/N fit with bounds >= 0): the extrapolated value."""
    x, y = max_scaled(*_as_feature_pair(ref_features, cand_features))
    sizes = (1.0 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype(np.int32)
    rng = np.random.default_rng(seed)
    values = [np.mean([frechet_distance(x[rng.choice(len(x), size=n)], y[rng.choice(len(y), size=n)])
                       for _ in range(num_batches)]) for n in sizes]
    return _nonnegative_line_fit(1.0 / sizes, values)[0]


def jetnet_kpd(ref_features, cand_features, batch_size, num_batches=10, seed=42):
    """JetNet's KPD (max-scaled, batches with replacement, degree 4, seed + 1000 i per batch): the median."""
    x, y = max_scaled(*_as_feature_pair(ref_features, cand_features))
    values = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + 1000 * i)
        values.append(mmd2_polynomial(x[rng.choice(len(x), size=batch_size)],
                                      y[rng.choice(len(y), size=batch_size)], degree=4))
    return float(np.median(values))


def _as_feature_pair(ref, cand):
    return _as_feature_matrix(ref, "reference features"), _as_feature_matrix(cand, "candidate features")


def feature_distance_table(ref, cand, seed=SEED, convention="ours"):
    """Distance rows between two feature matrices (gan.features order), see :func:`distance_table`."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r} (known: {', '.join(CONVENTIONS)})")
    n_layers = (np.shape(ref)[1] - 4) // 5
    separation = calochallenge_separation_power if convention == "calochallenge" else feature_separation_power
    rows = []
    for group, cols in _group_columns(n_layers).items():
        for distance, func in (("separation_power", separation), ("w1_normalised", normalised_wasserstein_1)):
            value = np.mean([func(ref[:, c], cand[:, c]) for c in cols])
            rows.append({"distance": distance, "features": group, "value": float(value), "uncertainty": None})
    if convention == "jetnet":
        n = min(len(ref), len(cand))
        fpd = (jetnet_fpd(ref, cand, max(2, int(FPD_MIN_FRACTION * n)), n), None)
        kpd = (jetnet_kpd(ref, cand, n), None)
    else:
        fpd, kpd = frechet_physics_distance(ref, cand, seed=seed), kernel_physics_distance(ref, cand, seed=seed)
    rows += [{"distance": "fpd", "features": "all", "value": fpd[0], "uncertainty": fpd[1]},
             {"distance": "kpd", "features": "all", "value": kpd[0], "uncertainty": kpd[1]}]
    return rows


def _group_columns(n_layers):
    names = features.feature_names(n_layers)
    column = {name: i for i, name in enumerate(names)}
    return {group: [column[n] for n in group_names] for group, group_names in features.feature_groups(n_layers).items()}


def distance_table(ref_ecal, ref_energy, cand_ecal, cand_energy, seed=SEED, convention="ours"):
    """All distances between two shower samples, as rows for a report.

    Inputs as in gan.physics (GeV); both samples should share the primary
    energy distribution (e.g. generated for the same energies). Rows are
    dicts {"distance", "features", "value", "uncertainty"}: per feature group
    of gan.features, "separation_power" and "w1_normalised" (means over the
    group's features; uncertainty None), then "fpd" and "kpd" on all features.
    Deterministic for a given seed. ``convention``: see CONVENTIONS.
    """
    names, ref = features.high_level_features(ref_ecal, ref_energy)
    cand_names, cand = features.high_level_features(cand_ecal, cand_energy)
    if names != cand_names:
        raise ValueError("reference and candidate showers have different grids")
    return feature_distance_table(ref, cand, seed, convention)


def format_distance_table(rows):
    """Render distance_table rows as a plain text table."""
    lines = [f"{'distance':<18}{'features':<24}{'value':>12}{'uncertainty':>14}"]
    for r in rows:
        unc = "-" if r["uncertainty"] is None else f"{r['uncertainty']:.4g}"
        lines.append(f"{r['distance']:<18}{r['features']:<24}{r['value']:>12.4g}{unc:>14}")
    return "\n".join(lines)
