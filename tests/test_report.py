"""The study report without TensorFlow: numbers behind the figures, verdicts, rendering, results.json and --compare."""

import json
import math

import numpy as np
import pytest
from synthetic import synthetic_showers

from gan import physics
from report import figures, render, results
from report.figures import FP32, GEANT4, Sample
from study import runner as study  # the study's pieces: the report only renders
from verdict import requirements

EDGES = np.array([10.0, 50.0, 100.0, 150.0, 200.0, 250.0])


@pytest.fixture(scope="module")
def showers():
    energy = np.random.default_rng(3).uniform(10, 250, 60)
    return energy, synthetic_showers(energy, seed=1)


# ------------------------------------------------------------------ numbers behind the figures


def test_profile_data_are_the_binned_mean_profiles(showers):
    energy, ecal = showers
    sample = Sample(FP32, ecal, energy)
    for kind, profile in (("longitudinal", physics.longitudinal_profile), ("transverse", physics.transverse_profile_x)):
        expected = physics.binned_mean_std(profile(ecal), energy, EDGES)[0]
        np.testing.assert_array_equal(figures.profile_data(sample, EDGES, kind), expected)


def test_profile_shape_matches_the_synthetic_shower_model(showers):
    """synthetic_showers: gamma-like in z with its maximum near layer 5.5, Gaussian in x centred at cell 12."""
    energy, ecal = showers
    long = figures.profile_data(Sample(FP32, ecal, energy), EDGES, "longitudinal")
    trans = figures.profile_data(Sample(FP32, ecal, energy), EDGES, "transverse")
    assert set(np.argmax(long, axis=1)) <= {5, 6}
    assert set(np.argmax(trans, axis=1)) == {12}
    np.testing.assert_allclose(trans[:, 12 - 3] / trans[:, 12], np.exp(-0.5 * (3 / 2.0) ** 2), rtol=0.02)


def test_sampling_fraction_data_is_the_known_fraction_with_errors_of_the_mean(showers):
    energy, ecal = showers
    d = figures.sampling_fraction_data(Sample(FP32, ecal, energy), EDGES)
    np.testing.assert_allclose(d["mean"], 0.02, rtol=0.01)  # synthetic showers: E_cal = 0.02 E_p x mean-1 noise
    sf = physics.sampling_fraction(ecal, energy)
    first = (energy >= 10) & (energy < 50)
    assert d["count"][0] == first.sum()
    np.testing.assert_allclose(d["error"][0], sf[first].std() / np.sqrt(first.sum()))
    np.testing.assert_array_equal(d["centre"], [30, 75, 125, 175, 225])


def test_spectrum_data_is_cells_per_shower(showers):
    energy, ecal = showers
    counts, edges = figures.spectrum_data(Sample(FP32, ecal, energy))
    assert counts.sum() == pytest.approx((ecal > 1e-6).sum() / len(ecal), rel=1e-3)
    np.testing.assert_array_equal(edges, physics.CELL_SPECTRUM_BINS_GEV)


def test_moments_data_centroids_sit_at_the_synthetic_centre(showers):
    energy, ecal = showers
    d = figures.moments_data(Sample(FP32, ecal, energy), EDGES)
    np.testing.assert_allclose(d["mean"][:, :2, 0], 12.0, atol=0.05)  # x and y centroids
    np.testing.assert_allclose(d["mean"][:, :2, 1], 4.0, rtol=0.05)  # sigma 2 cells -> 2nd moment 4 cells^2


def test_ratio_to_skips_slices_without_reference_energy():
    ratio = figures.ratio_to([2.0, 1.0, 5.0, 1.0], [1.0, 0.0, 1e-6, 4.0])
    np.testing.assert_array_equal(ratio[[0, 3]], [2.0, 0.25])
    assert np.isnan(ratio[1]) and np.isnan(ratio[2])


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def _lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_drawn_profiles_are_the_profile_data(showers):
    energy, ecal = showers
    samples = [Sample(GEANT4, ecal, energy), Sample(FP32, ecal, energy), Sample("bf16", 1.1 * ecal, energy)]
    fig = figures.draw_profiles(samples, EDGES, "longitudinal", "test")
    try:
        shown = figures.bins_to_show(EDGES)
        assert shown == [0, 2, 4]
        for col, b in enumerate(shown):
            top, bottom = fig.axes[col], fig.axes[len(shown) + col]
            lines = _lines_by_label(top)
            for s in samples:
                expected = figures.profile_data(s, EDGES, "longitudinal")[b]
                np.testing.assert_allclose(lines[s.label].get_ydata(), expected)
            ratios = [line.get_ydata() for line in bottom.get_lines() if len(line.get_ydata()) == 25]
            assert any(np.allclose(r[np.isfinite(r)], 1.1) for r in ratios)  # bf16 / FP32
    finally:
        _close(fig)


def test_drawn_sampling_fraction_points_are_the_data(showers):
    energy, ecal = showers
    samples = [Sample(FP32, ecal, energy), Sample("int8", 0.5 * ecal, energy)]
    fig = figures.draw_sampling_fraction(samples, EDGES, "test")
    try:
        drawn = [c.lines[0].get_ydata() for c in fig.axes[0].containers]
        for s, y in zip(samples, drawn, strict=True):
            np.testing.assert_allclose(y, 100 * figures.sampling_fraction_data(s, EDGES)["mean"])
    finally:
        _close(fig)


# ------------------------------------------------------------------ a study's results from synthetic showers


def _entry(fp32, showers, energy, speed, table, name):
    """A variant's results entry made by the study's typed result (no TensorFlow)."""
    from quant.speed import Speedup
    from study.results import PhysicsResult, SpeedResult, VariantResult

    speedup = Speedup(**speed, pairs=3, reference_s=0.1, variant_s=0.1)
    paired = study.paired_entry(fp32, showers, energy, table, name) | {"known_failure": None}
    g4_cpu = physics.geant4_cpu_per_bin([20.0, 30.0, 40.0], [0.1, 0.1, 0.1], [10.0, 50.0])
    result = VariantResult("default", name, name, op_summary="int8 1, fp32 4", disk_bytes=1_000_000,
                           op_report={"rows": [{"op": "dense", "precision": "int8", "note": ""}]},
                           speed={1: SpeedResult(1, speedup, 10.0), 32: SpeedResult(32, speedup, 50.0)},
                           physics=PhysicsResult(paired),
                           speedup_vs_geant4=physics.speedup_over_geant4(g4_cpu, 0.5 / 32, 2))
    return result.to_dict()


def make_results(showers) -> dict:
    energy, ecal = showers
    table = requirements.load("default")
    variants = {
        "fast-ok": _entry(ecal, ecal * 1.001, energy, {"median": 2.0, "low": 1.8, "high": 2.2}, table, "fast-ok"),
        "fast-bad": _entry(ecal, ecal * 1.5, energy, {"median": 3.0, "low": 2.5, "high": 3.5}, table, "fast-bad"),
        "slow-ok": _entry(ecal, ecal, energy, {"median": 0.2, "low": 0.1, "high": 0.3}, table, "slow-ok"),
        "gone": {"unavailable": "needs a CPU it does not have", "description": "gone"},
    }
    out = {"schema": results.SCHEMA_VERSION, "created": "2026-01-01T00:00:00+00:00", "command": "python -m report",
           "quick": study.QUICK_NOTE.format(pairs=3), "elapsed_s": 1.0,
           "machine": {"cpu_model": "test CPU", "isa_flags": ["amx_int8"], "logical_cpus": 2, "threads_used": 2,
                       "platform": "test"},
           "software": {"numpy": np.__version__, "mplhep": None},
           "settings": {"batch_sizes": [1, 32], "speed": True},
           "models": {"default": {"edges_gev": EDGES.tolist(), "showers": len(energy), "stale_tolerances": None,
                                  "inputs": "synthetic", "reference": None, "geant4_cpu_s": [],
                                  "fp32": {"op_summary": "fp32 5", "disk_bytes": 3_500_000,
                                           "showers_per_s": {"1": 5.0, "32": 25.0}},
                                  "variants": variants}},
           "verdict": {"default": study.verdict(variants)}}
    return results.to_jsonable(out)


def test_verdict_sorts_variants_by_speed_and_physics(showers):
    r = make_results(showers)
    v = r["verdict"]["default"]
    assert v["faster_keeps"] == ["fast-ok"] and v["faster_breaks"] == ["fast-bad"]
    assert v["slower_keeps"] == ["slow-ok"] and v["not_run"] == ["gone"]
    assert r["models"]["default"]["variants"]["fast-bad"]["paired"]["worst_ratio"] > 1


def test_cannot_tell_is_its_own_verdict_neither_keeps_nor_breaks(showers):
    r = make_results(showers)
    variants = r["models"]["default"]["variants"]
    unresolved = dict(variants["fast-ok"], keeps_physics=False, physics_status=None)
    unresolved["paired"] = dict(unresolved["paired"], ok=False, status="cannot tell")
    v = study.verdict({"fast-unresolved": unresolved, "fast-bad": variants["fast-bad"]})
    assert v["faster_cannot_tell"] == ["fast-unresolved"] and v["faster_breaks"] == ["fast-bad"]
    assert study.physics_status(unresolved) == "cannot_tell" and study.physics_status(variants["fast-ok"]) == "keeps"
    assert {key for key, _ in render.CATEGORIES} == set(v)


def test_the_report_says_at_which_paired_sample_size_a_verdict_was_decided(showers):
    r = make_results(showers)
    m = r["models"]["default"]
    m["paired_stages"] = [400, 1000]
    grown = m["variants"]["fast-ok"]["paired"]
    grown |= {"showers": 400, "stages": [len(showers[0]), 400]}
    unresolved = m["variants"]["slow-ok"]
    unresolved |= {"keeps_physics": False, "physics_status": "cannot_tell"}
    unresolved["paired"] |= {"ok": False, "status": "cannot tell", "showers": 1000, "stages": [100, 400, 1000]}
    r["verdict"]["default"] = study.verdict(m["variants"])
    assert render.paired_cell(grown) == "pass at 400 showers"
    assert render.paired_cell(unresolved["paired"]) == "cannot tell at 1000 showers"
    registered = dict(unresolved["paired"], known_failure="registered: cannot tell at 1000 showers")
    assert render.paired_cell(registered) == "cannot tell (known failure) at 1000 showers"  # never 'FAIL'
    assert render.paired_cell(m["variants"]["fast-bad"]["paired"]) == "FAIL"  # older results: no size stated
    lines = render.verdict_lines(r, "default")
    assert any("fast-ok (2.00x; paired pass at 400 showers)" in line for line in lines)
    assert any("cannot tell" in line and "slow-ok (0.20x; paired cannot tell at 1000 showers" in line
               for line in lines)
    md = render.to_markdown(render.build_blocks(r, {}, [], None))
    assert "pass at 400 showers" in md and "up to 1000 where unresolved" in md


@pytest.mark.parametrize(("low", "high", "expected"), [(1.1, 2, "faster"), (0.5, 0.9, "slower"), (0.9, 1.2, "same")])
def test_speed_class_uses_the_interval(low, high, expected):
    assert study.speed_class({"median": (low + high) / 2, "low": low, "high": high}) == expected


def test_speedup_vs_geant4_is_per_core():
    """One binning rule (gan.physics.energy_bin_index): [low, high), the last bin closed; empty bins kept."""
    from gan.data import Showers
    from study.runner import geant4_cpu

    energy = np.array([20.0, 30.0, 120.0, 130.0, 140.0], np.float32)
    ref = Showers(np.zeros((5, 2, 2, 2)), energy, g4_cpu_s=np.array([0.1, 0.3, 0.4, 0.5, 0.6], np.float32))
    table = geant4_cpu(ref, EDGES)
    assert [(r["e_low"], r["events"]) for r in table] == [(10.0, 2), (50.0, 0), (100.0, 3), (150.0, 0), (200.0, 0)]
    assert [r["median_s"] for r in table[::2][:2]] == pytest.approx([0.2, 0.5]) and table[1]["median_s"] is None
    rows = physics.speedup_over_geant4(table, seconds_per_shower=0.01, threads=2)
    assert [r["speedup"] for r in rows] == pytest.approx([10.0, None, 25.0, None, None])
    assert render.geant4_speedup_cell(rows) == "10-25x"


def test_tradeoff_points_come_from_the_results(showers):
    r = make_results(showers)
    points = {p["variant"]: p for p in figures.tradeoff_data(r["models"]["default"]["variants"])}
    assert set(points) == {"fast-ok", "fast-bad", "slow-ok"}
    assert points["fast-bad"]["speedup"] == 3.0 and not points["fast-bad"]["ok"] and points["fast-ok"]["ok"]
    assert points["slow-ok"]["worst_ratio"] == 0 and points["slow-ok"]["drawn_ratio"] == figures.LOG_FLOOR
    fig = figures.draw_tradeoff({"default": list(points.values())}, "test")
    try:
        xs = sorted(float(c.lines[0].get_xdata()[0]) for c in fig.axes[0].containers)
        assert xs == [0.2, 2.0, 3.0]
    finally:
        _close(fig)


def test_report_states_the_verdict_from_the_numbers(showers, tmp_path):
    r = make_results(showers)
    blocks = render.build_blocks(r, {}, None, None)
    md = render.to_markdown(blocks)
    assert "**faster and keeps the physics**: fast-ok (2.00x)" in md
    assert "**faster but breaks the physics**: fast-bad (3.00x; worst: total_energy_mean" in md
    assert "**slower (keeps the physics)**: slow-ok (0.20x)" in md
    assert "gone (needs a CPU it does not have)" in md
    assert "| fast-ok | int8 1, fp32 4 | 1.00 MB | 10.0 | 50.0 | 2.00x [1.80, 2.20]" in md
    assert "Fastest variant that keeps the physics: fast-ok at 2.00x, which beats the paper's 1.73x" in md
    html = render.to_html(blocks, tmp_path)
    assert html.startswith("<!DOCTYPE html>") and "<strong>faster and keeps the physics</strong>" in html


def test_paper_comparison_is_derived_from_measured_speedups(showers):
    r = make_results(showers)
    r["models"]["default"]["variants"]["inc-int8"] = r["models"]["default"]["variants"].pop("fast-ok")
    text = "\n".join(render.paper_comparison(r))
    assert "INC INT8 (inc-int8, 1 int8 op(s): int8 1, fp32 4): 2.00x [1.80, 2.20], above the paper's 1.73x" in text
    r["models"]["default"]["variants"]["inc-int8"]["speedup_at_largest_batch"] |= {"median": 1.0, "low": 0.9,
                                                                                    "high": 1.1}
    assert "below the paper's 1.73x" in "\n".join(render.paper_comparison(r))


def test_html_embeds_figures(showers, tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG fake")
    html = render.to_html([("img", "a.png", "caption *x*")], tmp_path)
    assert "data:image/png;base64," in html and "a.png" not in html.split("base64,")[1][:20]
    assert "<figcaption>caption <em>x</em></figcaption>" in html


def test_markdown_tables_of_other_modules_become_table_blocks():
    blocks = render.markdown_blocks("title line\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nnote")
    assert blocks == [("p", "title line"), ("table", ["a", "b"], [["1", "2"]]), ("p", "note")]


# ------------------------------------------------------------------ results.json and --compare


def test_results_round_trip_keeps_every_number(showers, tmp_path):
    r = make_results(showers)
    r["models"]["default"]["fp32"]["odd"] = [math.nan, math.inf, -math.inf, np.float32(1.5)]
    r = results.to_jsonable(r)
    path = results.write(r, tmp_path / results.RESULTS_FILE)
    json.loads(path.read_text())  # plain JSON: no NaN / Infinity literals
    back = results.read(tmp_path)
    assert back == r and back["models"]["default"]["fp32"]["odd"] == ["nan", "inf", "-inf", 1.5]
    assert [results.number(x) for x in back["models"]["default"]["fp32"]["odd"][1:]] == [math.inf, -math.inf, 1.5]


@pytest.mark.parametrize(("content", "message"),
                         [("{", "unreadable"), ('{"schema": 99}', "schema 1"), ("[]", "schema")])
def test_bad_results_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(results.ResultsError, match=message) as info:
        results.read(path)
    assert str(path) in str(info.value)


def test_compare_lists_what_moved(showers):
    old = make_results(showers)
    new = json.loads(json.dumps(old))
    fast_ok = new["models"]["default"]["variants"]["fast-ok"]
    fast_ok["speedup_at_largest_batch"]["median"] = 1.0
    fast_ok["speed"]["1"]["showers_per_s"] *= 1.01  # below the threshold: not listed
    fast_ok["keeps_physics"] = False
    del new["models"]["default"]["variants"]["gone"]
    new["models"]["default"]["variants"]["new-one"] = {"unavailable": "x"}
    new["created"] = "2027-01-01"  # volatile: never listed
    fast_ok["speed"]["32"]["showers_per_s"] = 10.0  # -80%: listed before the -50% move
    moves = results.diff(old, new)
    assert moves["moved"] == ["models/default/variants/fast-ok/speed/32/showers_per_s: 50 -> 10 (-80%)",
                              "models/default/variants/fast-ok/speedup_at_largest_batch/median: 2 -> 1 (-50%)"]
    assert moves["warnings"] == []
    new["settings"]["batch_sizes"] = [1, 64]
    assert results.diff(old, new)["warnings"] == ["settings differ: batch_sizes [1, 32] -> [1, 64] (numbers not like "
                                                  "for like)"]
    assert moves["changed"] == ["models/default/variants/fast-ok/keeps_physics: True -> False"]
    assert moves["only_old"] == ["models/default/variants/gone"]
    assert moves["only_new"] == ["models/default/variants/new-one"]
    text = results.format_diff(moves, "old", "new")
    assert "fast-ok/keeps_physics: True -> False" in text and "speed/1/" not in text and "created" not in text
    assert results.format_diff(results.diff(old, old)).endswith("nothing moved by more than 5%")


def test_geant4_table_is_the_increase_in_tolerance_units(showers):
    r = make_results(showers)
    fp32, variant = {"w1.a": 1.0, "sep.b": 0.5, "fpd.c": 2.0}, {"w1.a": 1.2, "sep.b": 0.4, "fpd.c": 2.1}
    entry = study.geant4_entry(fp32, variant, {"w1.a": {"threshold": 0.1}, "sep.b": {"threshold": 0.0},
                                               "fpd.c": {"threshold": 0.2}}, "test")
    assert not entry["ok"] and len(entry["failures"]) == 1 and entry["failures"][0].startswith("w1.a:")
    m = r["models"]["default"]
    m["fp32"]["geant4_distances"] = fp32
    m["variants"]["fast-ok"]["geant4"] = results.to_jsonable(entry)
    header, rows = render.geant4_table(r, "default")
    assert header == ["distance to Geant4", "FP32", "fast-ok (increase / tol.)"]
    assert rows == [["w1.a", "1", "2 FAIL"], ["sep.b", "0.5", "-0.1 (tol. 0)"], ["fpd.c", "2", "0.5"]]
