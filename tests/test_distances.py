"""Tests for gan.distances: separation power, W1, FPD, KPD, distance table."""

import ast
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from synthetic import synthetic_showers

from gan import distances, features, paired

SETTINGS = settings(max_examples=50, deadline=None)


def gaussian_pair(n, dim, shift=0.0, seed=0):
    """Two independent (n, dim) standard-normal samples, the second shifted in dim 0."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    y[:, 0] += shift
    return x, y


histograms = st.integers(1, 20).flatmap(
    lambda n: hnp.arrays(np.float64, n, elements=st.floats(0, 1e3)))
samples = hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e3, 1e3))


# --------------------------------------------------------- separation power


@SETTINGS
@given(st.data())
def test_separation_power_is_symmetric_bounded_and_zero_on_itself(data):
    h1 = data.draw(histograms)
    h2 = data.draw(hnp.arrays(np.float64, len(h1), elements=st.floats(0, 1e3)))
    assume(h1.sum() > 0 and h2.sum() > 0)
    s = distances.separation_power(h1, h2)
    assert 0.0 <= s <= 1.0
    assert s == pytest.approx(distances.separation_power(h2, h1), abs=1e-12)
    assert s == pytest.approx(distances.separation_power(7.0 * h1, h2), abs=1e-12)
    assert distances.separation_power(h1, h1) == 0.0


@SETTINGS
@given(histograms, histograms)
def test_disjoint_histograms_separate_fully(a, b):
    assume(a.sum() > 0 and b.sum() > 0)
    h1 = np.concatenate([a, np.zeros(len(b))])
    h2 = np.concatenate([np.zeros(len(a)), b])
    assert distances.separation_power(h1, h2) == pytest.approx(1.0, abs=1e-12)


def test_separation_power_exact_values_and_empty_bins():
    # p = (1, 0), q = (1/2, 1/2): 1/2 (0.25 / 1.5 + 0.25 / 0.5) = 1/3
    assert distances.separation_power([4, 0], [3, 3]) == pytest.approx(1 / 3)
    # bins empty in both histograms change nothing
    assert distances.separation_power([0, 4, 0, 0, 0], [0, 3, 0, 3, 0]) == pytest.approx(1 / 3)
    # single-event histograms: same bin -> 0, different bins -> 1
    assert distances.separation_power([0, 1, 0], [0, 1, 0]) == 0.0
    assert distances.separation_power([0, 1, 0], [0, 0, 1]) == 1.0


@pytest.mark.parametrize(("h1", "h2", "message"), [
    ([0, 0], [1, 2], "h1 is empty"),
    ([1, 2], [0, 0], "h2 is empty"),
    ([1, -1], [1, 2], ">= 0"),
    ([1, np.nan], [1, 2], "finite"),
    ([1, 2], [1, 2, 3], "shape"),
])
def test_separation_power_rejects_bad_histograms(h1, h2, message):
    with pytest.raises(ValueError, match=message):
        distances.separation_power(h1, h2)


def test_feature_binning_comes_from_the_reference_with_overflow():
    ref = np.linspace(0.0, 1.0, 101)
    edges = distances.reference_bin_edges(ref)
    assert len(edges) == distances.N_BINS + 1
    centres = 0.5 * (edges[1:] + edges[:-1])  # end bins centred on min and max
    np.testing.assert_allclose(centres[[0, -1]], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(np.diff(edges), 1 / (distances.N_BINS - 1))
    counts = distances.histogram_with_overflow([-5.0, 0.0, 1.0, 1.0, 9.0], edges)
    assert len(counts) == distances.N_BINS + 2
    assert (counts[0], counts[1], counts[-2], counts[-1]) == (1, 1, 2, 1)
    # rounding-level changes (float32) of the extreme values change nothing
    assert distances.feature_separation_power(ref, ref * (1 + 1e-7)) == 0.0
    assert distances.feature_separation_power(ref, ref.copy()) == 0.0
    assert distances.feature_separation_power(ref, ref + 2.0) == 1.0  # all overflow
    assert distances.feature_separation_power(ref, ref - 2.0) == 1.0  # all underflow
    assert 0.0 < distances.feature_separation_power(ref, ref + 0.2) < 1.0


def test_feature_separation_power_of_constant_and_single_event_samples():
    assert distances.feature_separation_power([3.0] * 5, [3.0] * 2) == 0.0
    # bins [under, 3 (+- rounding), over]: p = (0, 1, 0), q = (1/4, 1/2, 1/4) -> S = 1/3
    s = distances.feature_separation_power([3.0] * 4, [3.0, 3.0, 4.0, 2.0])
    assert s == pytest.approx(1 / 3)
    assert distances.feature_separation_power([0.0] * 3, [1e-9, -1e-9]) == 0.0  # rounding
    assert distances.feature_separation_power([1.0], [1.0]) == 0.0
    assert distances.feature_separation_power([1.0], [2.0]) == 1.0
    with pytest.raises(ValueError, match="empty"):
        distances.feature_separation_power([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        distances.feature_separation_power([1.0, 2.0], [np.nan])


# --------------------------------------------------------------------- W1


@SETTINGS
@given(samples, st.floats(0.01, 100))
def test_w1_is_zero_on_itself_equals_a_shift_and_grows_with_it(x, shift):
    assert distances.wasserstein_1(x, x.copy()) == 0.0
    y = np.random.default_rng(len(x)).permutation(x) * 0.5 + 1.0  # equal sizes:
    expected = np.mean(np.abs(np.sort(x) - np.sort(y)))  # mean |sorted differences|
    assert distances.wasserstein_1(x, y) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    w_small = distances.wasserstein_1(x, x + shift)
    w_large = distances.wasserstein_1(x, x + 2 * shift)
    assert w_small == pytest.approx(shift, rel=1e-6, abs=1e-9)
    assert w_large > w_small


def test_normalised_w1_divides_by_the_reference_std():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=500)
    w1 = distances.wasserstein_1(x, x + 1.0)
    assert distances.normalised_wasserstein_1(x, x + 1.0) == pytest.approx(w1 / x.std())
    assert distances.normalised_wasserstein_1(x, x.copy()) == 0.0
    # constant reference: pooled std; both constant and equal: 0
    assert distances.normalised_wasserstein_1([0.0, 0.0], [2.0, 2.0]) == pytest.approx(2.0)
    assert distances.normalised_wasserstein_1([5.0] * 3, [5.0] * 4) == 0.0


# -------------------------------------------------------------------- FPD


def test_frechet_distance_matches_the_one_dimensional_formula():
    x = np.random.default_rng(1).normal(size=(200, 1))
    y = 2.0 * x + 1.0  # FD = (mean_y - mean_x)^2 + (sigma_y - sigma_x)^2
    expected = (1.0 + x.mean()) ** 2 + np.var(x, ddof=1)
    assert distances.frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)
    assert distances.frechet_distance(x, x.copy()) == pytest.approx(0.0, abs=1e-12)


def test_frechet_distance_handles_singular_covariances():
    x, y = gaussian_pair(50, 4, seed=2)
    x[:, 1] = 0.0  # constant feature in the reference
    y[:, 2] = y[:, 3]  # perfectly correlated features in the candidate
    value, error = distances.frechet_physics_distance(x, y, n_draws=3)
    assert np.isfinite(value) and np.isfinite(error) and value >= 0.0


def test_fpd_is_about_zero_for_the_same_gaussian():
    value, error = distances.frechet_physics_distance(*gaussian_pair(1000, 5, seed=3))
    assert 0.0 <= value <= max(3 * error, 0.01)
    assert error < 0.01


def test_fpd_grows_with_a_mean_shift():
    results = [distances.frechet_physics_distance(*gaussian_pair(1000, 5, s, seed=4))
               for s in (0.0, 0.5, 1.0)]
    values = [v for v, _ in results]
    assert values[0] < values[1] < values[2]
    # standardised mean shift s (reference std ~1): FPD ~ s^2
    assert values[1] == pytest.approx(0.25, abs=0.06)
    assert values[2] == pytest.approx(1.0, abs=0.12)


def test_fpd_extrapolation_removes_the_finite_sample_bias():
    # 20 features, 500 events: the plain Fréchet distance is biased up by ~0.45;
    # averaged over 4 sample pairs to tame the sample-to-sample scatter (~0.15)
    pairs = [gaussian_pair(500, 20, shift=1.0, seed=s) for s in range(4)]  # FPD_inf = 1
    raw = np.mean([distances.frechet_distance(*distances.standardise(x, y)) for x, y in pairs])
    fits = [distances.frechet_physics_distance(x, y, n_draws=5) for x, y in pairs]
    assert raw - 1.0 > 0.3
    assert np.mean([v for v, _ in fits]) == pytest.approx(1.0, abs=0.15)
    assert all(0.0 < e < 0.1 for _, e in fits)


def test_fpd_is_deterministic_for_a_seed():
    x, y = gaussian_pair(300, 3, shift=0.3, seed=6)
    assert (distances.frechet_physics_distance(x, y, seed=1)
            == distances.frechet_physics_distance(x, y, seed=1))
    assert (distances.frechet_physics_distance(x, y, seed=1)
            != distances.frechet_physics_distance(x, y, seed=2))


def test_subset_sizes_span_min_n_to_the_full_sample():
    assert distances.subset_sizes(1000).tolist() == [200, 400, 600, 800, 1000]
    assert distances.subset_sizes(10, min_n=8).tolist() == [8, 9, 10]
    assert distances.subset_sizes(3).tolist() == [2, 3]


# -------------------------------------------------------------------- KPD


def test_kpd_is_about_zero_for_identical_distributions():
    median, spread = distances.kernel_physics_distance(*gaussian_pair(600, 5, seed=7),
                                                       batch_size=300)
    assert spread > 0
    assert abs(median) < max(3 * spread, 1e-3)


def test_kpd_is_positive_for_shifted_distributions():
    x, y = gaussian_pair(600, 5, seed=8)
    small, _ = distances.kernel_physics_distance(x, y + [0.5, 0, 0, 0, 0], batch_size=300)
    large, spread = distances.kernel_physics_distance(x, y + [1.0, 0, 0, 0, 0], batch_size=300)
    assert large > small > 0
    assert large > 5 * spread


def test_kpd_is_deterministic_for_a_seed():
    x, y = gaussian_pair(200, 3, shift=0.5, seed=9)
    assert (distances.kernel_physics_distance(x, y, seed=3)
            == distances.kernel_physics_distance(x, y, seed=3))


def test_multivariate_distances_reject_bad_features():
    with pytest.raises(ValueError, match="feature counts differ"):
        distances.frechet_physics_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        distances.kernel_physics_distance(np.zeros((5, 2)), np.full((5, 2), np.inf))


# ----------------------------------------------------------- distance table


@pytest.fixture(scope="module")
def shower_samples():
    energy = np.random.default_rng(10).uniform(20.0, 200.0, size=40)
    ref = synthetic_showers(energy, seed=11)
    cand = synthetic_showers(energy, seed=12) * np.float32(1.1)
    return ref, cand, energy


def test_distance_table_rows_cover_every_group_and_are_deterministic(shower_samples):
    ref, cand, energy = shower_samples
    rows = distances.distance_table(ref, energy, cand, energy, seed=1)
    assert rows == distances.distance_table(ref, energy, cand, energy, seed=1)
    keys = [(r["distance"], r["features"]) for r in rows]
    expected = [(d, g) for g in features.FEATURE_GROUPS
                for d in ("separation_power", "w1_normalised")]
    assert keys == expected + [("fpd", "all"), ("kpd", "all")]
    assert all(np.isfinite(r["value"]) and r["value"] >= 0 for r in rows[:-1])
    by_key = {k: r["value"] for k, r in zip(keys, rows, strict=True)}
    # a 10% energy scale separates the sampling fraction, not the centroids
    # (whose 40-event histograms differ by binning noise only)
    for distance in ("separation_power", "w1_normalised"):
        assert by_key[(distance, "sampling_fraction")] > 2 * by_key[(distance, "layer_centroid_x")]
    assert by_key[("separation_power", "sampling_fraction")] > 0.9
    text = distances.format_distance_table(rows)
    assert "sampling_fraction" in text and "fpd" in text and "kpd" in text


def test_distance_table_of_identical_samples_is_zero(shower_samples):
    ref, _, energy = shower_samples
    rows = distances.distance_table(ref, energy, ref.copy(), energy)
    for r in rows:
        if r["distance"] in ("separation_power", "w1_normalised", "fpd"):
            assert r["value"] == pytest.approx(0.0, abs=1e-9), r


@pytest.mark.parametrize("module", [distances, features, paired], ids=lambda m: m.__name__)
def test_modules_import_only_numpy_and_gan(module):
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"math", "numpy", "gan"}


# ------------------------------------------------------------------ the field's conventions, against their formulas


def _calochallenge_separation_power(hist1, hist2, bins):
    """CaloChallenge code/evaluate.py, verbatim formula."""
    hist1, hist2 = hist1 * np.diff(bins), hist2 * np.diff(bins)
    ret = (hist1 - hist2) ** 2
    ret /= hist1 + hist2 + 1e-16
    return 0.5 * ret.sum()


def test_calochallenge_separation_power_drops_out_of_range_values_where_ours_counts_them():
    rng = np.random.default_rng(0)
    ref, cand = rng.normal(0, 1, 500), rng.normal(0.3, 1.5, 500)
    bins = distances.reference_bin_edges(ref)
    expected = _calochallenge_separation_power(np.histogram(ref, bins, density=True)[0],
                                               np.histogram(cand, bins, density=True)[0], bins)
    assert distances.calochallenge_separation_power(ref, cand) == pytest.approx(expected, rel=1e-12)
    assert distances.feature_separation_power(ref, cand) > expected  # ours keeps the tails in overflow bins
    with np.errstate(invalid="ignore"):
        assert np.isnan(distances.calochallenge_separation_power(ref, ref + 100.0))  # nothing left in range


def _jetnet_reference(real, gen, min_samples, max_samples, batch_size, seed=42):
    """JetNet gen_metrics fpd / kpd formulas with scipy (sqrtm, bounded curve_fit), as a reference."""
    from scipy import linalg
    from scipy.optimize import curve_fit

    maximum = np.max(np.abs(real), axis=0)
    maximum[maximum == 0] = 1
    x, y = real / maximum, gen / maximum

    def frechet(a, b):
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        covmean = linalg.sqrtm(s1 @ s2).real
        diff = a.mean(axis=0) - b.mean(axis=0)
        return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)

    sizes = (1.0 / np.linspace(1.0 / min_samples, 1.0 / max_samples, 10)).astype("int32")
    rng = np.random.default_rng(seed)
    values = [np.mean([frechet(x[rng.choice(len(x), size=n)], y[rng.choice(len(y), size=n)]) for _ in range(20)])
              for n in sizes]
    fpd = curve_fit(lambda v, c, a: c + a * v, 1.0 / sizes, values, bounds=([0.0, 0.0], [np.inf, np.inf]))[0][0]
    kpds = []
    for i in range(10):
        rng = np.random.default_rng(seed + i * 1000)
        a, b = x[rng.choice(len(x), size=batch_size)], y[rng.choice(len(y), size=batch_size)]
        k = lambda p, q: (p @ q.T / p.shape[1] + 1.0) ** 4  # noqa: E731
        kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
        m = len(a)
        kpds.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    return fpd, float(np.median(kpds))


def test_jetnet_fpd_and_kpd_reproduce_jetnets_formulas():
    rng = np.random.default_rng(1)
    real = rng.gamma(3.0, 1.0, (300, 6))
    gen = real[rng.permutation(300)] * rng.normal(1.1, 0.1, (300, 6))
    fpd, kpd = _jetnet_reference(real, gen, 60, 300, 300)
    assert distances.jetnet_fpd(real, gen, 60, 300) == pytest.approx(fpd, rel=1e-4)  # curve_fit converges to ~1e-5
    assert distances.jetnet_kpd(real, gen, 300) == pytest.approx(kpd, rel=1e-9)
    ours_kpd, _ = distances.kernel_physics_distance(real, gen)
    assert ours_kpd != pytest.approx(kpd, rel=0.1)  # z-scored, degree 3, without replacement: another number


def test_nonnegative_line_fit_matches_scipys_bounded_fit():
    from scipy.optimize import curve_fit

    x = np.linspace(0.01, 0.05, 10)
    for y in (2.0 - 10 * x, 0.5 + 3 * x, -1 + 0 * x + 0.01 * np.sin(50 * x)):
        expected = curve_fit(lambda v, c, a: c + a * v, x, y, bounds=([0.0, 0.0], [np.inf, np.inf]))[0]
        assert distances._nonnegative_line_fit(x, y) == pytest.approx(tuple(expected), abs=1e-6)


def test_feature_table_conventions_share_rows_and_differ_where_documented():
    rng = np.random.default_rng(2)
    n_features = 5 * 25 + 4
    ref, cand = rng.gamma(3.0, 1.0, (120, n_features)), rng.gamma(3.2, 1.0, (120, n_features))
    tables = {c: {(r["distance"], r["features"]): r["value"] for r in distances.feature_distance_table(
        ref, cand, convention=c)} for c in distances.CONVENTIONS}
    assert tables["ours"].keys() == tables["calochallenge"].keys() == tables["jetnet"].keys()
    assert tables["jetnet"][("w1_normalised", "hits")] == tables["ours"][("w1_normalised", "hits")]
    assert tables["jetnet"][("kpd", "all")] != tables["ours"][("kpd", "all")]
    with pytest.raises(ValueError, match="unknown convention"):
        distances.feature_distance_table(ref, cand, convention="atlas")
