"""The validation suite's own logic, without TensorFlow: the requirement table and user overrides, the bootstrap
decision, Geant4 null thresholds and blind checks, known-failure scoping, verdicts and their tables, and the
consistency of the data files in validation/."""

import math

import numpy as np
import pytest

from gan.machine import Here, Scope
from gan.paired import PAIRED_OBSERVABLES
from study.settings import load_settings
from verdict import geant4_null, known_failures, requirements
from verdict.checks import (
    FAIL,
    OK,
    UNRESOLVED,
    ToleranceExceeded,
    Unresolved,
    Verdict,
    check_geant4,
    check_paired,
    decide,
    paired_sequential,
    within,
)
from verdict.known_failures import KnownFailure

HERE = Here(frozenset({"avx512_vnni", "amx_bf16"}), {"tensorflow": "2.21.0", "openvino": "2026.4.1"})
EDGES = (10.0, 50.0, 150.0)


def reqs(**tight):
    """Requirements on EDGES: 10 (loose) for every observable unless given."""
    return requirements.Requirements("m", EDGES, {name: (tight.get(name, 10.0),) * 2 for name in PAIRED_OBSERVABLES})


# ------------------------------------------------------------------ the requirement table


def test_decision_uses_the_whole_interval():
    assert decide(-0.004, 0.006, 0.01) == OK
    assert decide(0.012, 0.02, 0.01) == FAIL and decide(-0.03, -0.011, 0.01) == FAIL
    assert decide(0.005, 0.015, 0.01) == UNRESOLVED  # straddles: cannot tell, never a pass
    assert decide(math.nan, 0.0, 1.0) == FAIL  # no shift given: broken
    assert decide(math.nan, math.nan, 1.0, shift=math.nan) == FAIL  # NaN showers never pass
    assert decide(math.nan, math.nan, 1.0, shift=0.0) == UNRESOLVED  # too few events to bootstrap: more showers


def test_every_model_has_a_positive_finite_requirement_for_every_observable_and_bin():
    settings = load_settings()
    for model in settings.models:
        table = requirements.load(model)
        assert table.edges == tuple(settings.edges(model))
        assert set(table.values) == set(PAIRED_OBSERVABLES)
        for name, values in table.values.items():
            assert len(values) == len(table.edges) - 1
            assert all(0 < v < 1 for v in values), (model, name, values)  # none 0, none unreachable


def test_requirements_come_from_rules_with_a_written_source():
    table = requirements.load_table()
    assert set(table["rule"]) == set(PAIRED_OBSERVABLES)
    for name, rule in table["rule"].items():
        assert rule["source"] and 0 < rule["fraction"] <= 0.25, name
    assert table["provenance"]["events"] > 30_000 and len(table["provenance"]["files"]) == 2


def test_energy_requirement_separates_a_half_percent_from_two_percent():
    for model in ("default", "cern2017"):
        energy = requirements.load(model).values["total_energy_mean"]
        assert all(0.005 < v < 0.02 for v in energy)


def test_user_overrides_replace_entries_for_all_or_one_model(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text('[all]\nhits_mean = 0.05\n[default]\ntotal_energy_mean = [0.02, 0.02, 0.01, 0.01, 0.01]\n')
    default, cern = requirements.load("default", user), requirements.load("cern2017", user)
    assert default.values["hits_mean"] == (0.05,) * 5 and cern.values["hits_mean"] == (0.05,) * 4
    assert default.for_bin(10, 50)["total_energy_mean"] == 0.02
    assert cern.values["total_energy_mean"] == requirements.load("cern2017").values["total_energy_mean"]


@pytest.mark.parametrize(("text", "message"), [
    ("[all]\nhits = 0.1\n", "unknown observable 'hits'"),
    ("[default]\nhits_mean = [0.1, 0.1]\n", "list of 5"),
    ("[default]\nhits_mean = 0\n", "number > 0"),
    ("[default\n", "cannot read"),
])
def test_bad_user_overrides_name_the_file_and_the_problem(tmp_path, text, message):
    user = tmp_path / "mine.toml"
    user.write_text(text)
    with pytest.raises(requirements.RequirementError, match=message) as caught:
        requirements.load("default", user)
    assert str(user) in str(caught.value)


def test_unknown_model_and_bin_say_what_exists():
    with pytest.raises(requirements.RequirementError, match="no requirements for model 'other'"):
        requirements.load("other")
    with pytest.raises(requirements.RequirementError, match="no bin 20-30 GeV"):
        requirements.load("default").for_bin(20, 30)


def test_geant4_spreads_beyond_the_data_take_its_last_slice():
    energy = np.repeat(np.arange(10.0, 250.0, 1.0), 4)
    rng = np.random.default_rng(0)
    events = {"energy": energy, "sampling_fraction": rng.normal(0.025, 0.0015, len(energy)),
              "hits": rng.normal(100, 5, len(energy)), "moments": rng.normal(10, 1, (len(energy), 6)),
              **{k: rng.gamma(5, 1, (len(energy), 25)) for k in ("longitudinal_profile", "transverse_profile_x",
                                                                    "transverse_profile_y", "spectrum")}}
    inside = requirements.geant4_spreads(events, 240, 250)
    assert requirements.geant4_spreads(events, 400, 500) == inside
    assert inside["sampling_fraction"] == pytest.approx(0.06, rel=0.35)
    assert requirements.derive({"total_energy_mean": {"of": "sampling_fraction", "fraction": 0.15},
                                "energy_resolution": {"of": "own", "fraction": 0.05}}, inside) == \
        pytest.approx({"total_energy_mean": 0.15 * inside["sampling_fraction"], "energy_resolution": 0.05})


# ------------------------------------------------------------------ Geant4 null thresholds


def test_matched_triplets_are_disjoint_and_energy_matched():
    energy = np.random.default_rng(1).uniform(10, 250, 3000)
    a, b, c = geant4_null.matched_triplet(energy, 200, np.random.default_rng(2))
    assert len(set(a) | set(b) | set(c)) == 600
    assert np.max(np.abs(energy[a] - energy[b])) < 1.5 and np.max(np.abs(energy[a] - energy[c])) < 1.5


def test_thresholds_are_normal_quantiles_and_rates_are_counted():
    rng = np.random.default_rng(3)
    null = {"k": {"fp32": list(rng.normal(1, 0.1, 400)), "increase": list(rng.normal(0, 1, 400))}}
    thr = geant4_null.thresholds_from(null, 0.01)
    assert thr["k"]["threshold"] == pytest.approx(2.326, abs=0.25)
    rates, suite = geant4_null.false_alarms(null, thr)
    assert rates["k"] == suite and 0.0 <= suite < 0.03
    assert geant4_null.normal_quantile(0.975) == pytest.approx(1.96, abs=1e-3)


def test_the_committed_null_table_covers_every_size_and_distance_the_suite_uses():
    table, settings = geant4_null.load(), load_settings()
    sizes = {settings.geant4_showers, settings.held_out_tail, 500}  # default; --full; --full without ../shared
    for n in sizes:
        thresholds = geant4_null.thresholds(table, n)
        assert {"accuracy_metric.total", "fpd.all", "kpd.all", "separation_power.longitudinal_centroid",
                "w1_normalised.longitudinal_centroid"} <= set(thresholds)
        for key, t in thresholds.items():
            assert math.isfinite(t["threshold"]) and t["threshold"] > 0, (n, key)
            if key.startswith("separation_power"):
                assert t["threshold"] < 1, (n, key)  # reachable
    for n, entry in table["size"].items():
        assert entry["suite_false_alarm_rate_measured"] <= 2 * table["measure"]["alpha_suite"], n
        assert entry["check_resamplings"] >= 20
    assert table["provenance"]["events"] > 30_000


def test_missing_size_says_how_to_measure_it():
    with pytest.raises(geant4_null.NullTableError, match="geant4_null --write"):
        geant4_null.thresholds(geant4_null.load(), 123)


def test_geant4_check_is_one_sided_and_saturated_checks_are_blind():
    fp32 = {"fpd.all": 1.0, "kpd.all": 0.1, "separation_power.hits": 0.98}
    thr = {"fpd.all": {"threshold": 0.2}, "kpd.all": {"threshold": 0.05},
           "separation_power.hits": {"threshold": 0.03, "bound": 1.0}}
    better = check_geant4(fp32, {"fpd.all": 0.2, "kpd.all": -0.3, "separation_power.hits": 1.0}, thr)
    assert better.ok and better.blind == ["separation_power.hits (blind)"] and better.judged == 2
    assert "separation_power.hits (blind)" in better.report()
    worse = check_geant4(fp32, {"fpd.all": 1.5, "kpd.all": math.nan, "separation_power.hits": 0.99}, thr, "m-v")
    assert [line.split(":")[0] for line in worse.failures] == ["fpd.all", "kpd.all"]
    assert "fpd.all: FP32 1 -> variant 1.5 (increase +0.5, threshold 0.2)" in worse.report()
    assert worse.table.splitlines()[0].split()[-2:] == ["threshold", "status"]


def test_a_check_is_off_scale_when_fp32_is_far_beyond_geant4s_own_distance():
    thr = {"fpd.all": {"threshold": 10.0, "g4_distance": 40.0}}
    live = check_geant4({"fpd.all": 400.0}, {"fpd.all": 420.0}, thr)
    assert live.failures and live.judged == 1
    off = check_geant4({"fpd.all": 1.8e5}, {"fpd.all": 1.81e5}, thr)
    assert off.ok and off.blind == ["fpd.all (off-scale)"] and off.judged == 0
    assert off.table.splitlines()[-1].split()[-1] == "off-scale"


def test_a_check_is_blind_when_fp32_plus_the_threshold_reaches_the_bound():
    thr = {"separation_power.hits": {"threshold": 0.1, "bound": 1.0}}
    assert check_geant4({"separation_power.hits": 0.85}, {"separation_power.hits": 0.9}, thr).blind == []
    assert check_geant4({"separation_power.hits": 0.95}, {"separation_power.hits": 0.9}, thr).blind != []


# ------------------------------------------------------------------ known failures


def failure(packages=None, cpu_flags=(), **scope):
    return KnownFailure("bf16-full", "conv1 bug", **scope, where=Scope(cpu_flags=cpu_flags, packages=packages or {}))


@pytest.mark.parametrize(("scope", "model", "check", "expected"), [
    ({}, "default", "paired", True),
    ({"models": ("cern2017",)}, "default", "paired", False),
    ({"models": ("cern2017",)}, "cern2017", "paired", True),
    ({"checks": ("paired",)}, "default", "geant4", False),
    ({"packages": {"tensorflow": "==2.21.*"}}, "default", "paired", True),
    ({"packages": {"tensorflow": ">=2.22"}}, "default", "paired", False),
    ({"packages": {"tensorflow": "<2.16"}}, "default", "paired", False),
    ({"packages": {"nncf": ">=1"}}, "default", "paired", False),  # not installed: cannot fail
    ({"samples": ("full",)}, "default", "paired", False),  # a default-size run
    ({"cpu_flags": ("amx_bf16",)}, "default", "paired", True),
    ({"cpu_flags": ("amx_bf16", "amx_fp16")}, "default", "paired", False),
])
def test_scope_conditions_must_all_match(scope, model, check, expected):
    assert failure(**scope).applies(model, "bf16-full", check, HERE) is expected


def test_sample_scope_matches_the_run_size():
    assert failure(samples=("full",)).applies("default", "bf16-full", "geant4", HERE, sample="full")
    assert not failure(samples=("default",)).applies("default", "bf16-full", "geant4", HERE, sample="full")


def test_other_variants_never_match():
    assert not failure().applies("default", "bf16", "paired", HERE)


def test_find_returns_the_first_that_applies():
    first, second = failure(models=("cern2017",)), failure()
    assert known_failures.find([first, second], "default", "bf16-full", "paired", HERE) is second
    assert known_failures.find([first], "default", "bf16-full", "paired", HERE) is None


def test_parse_reads_scope_and_describes_it():
    [entry] = known_failures.parse('[[failure]]\nvariant = "bf16-full"\nreason = "r"\nmodels = ["cern2017"]\n'
                                   'packages = { tensorflow = "==2.21.*" }\ncpu_flags = ["amx_bf16"]\n')
    assert entry.applies("cern2017", "bf16-full", "geant4", HERE)
    assert entry.scope() == "cern2017, tensorflow==2.21.*, CPU amx_bf16"
    assert failure(checks=("geant4",), samples=("full",)).scope() == "geant4, full samples"
    assert failure().scope() == "everywhere"


@pytest.mark.parametrize(("text", "message"), [
    ('[[failure]]\nvariant = "x"\nreason = "r"\nmodel = ["default"]\n', "unknown field"),
    ('[[failure]]\nvariant = "x"\n', "missing"),
    ('[[failure]]\nvariant = "x"\nreason = "r"\nchecks = ["speed"]\n', "unknown checks"),
    ('[[failure]]\nvariant = "x"\nreason = "r"\nsamples = ["large"]\n', "unknown samples"),
    ('[[failure]]\nvariant = "x"\nreason = "r"\npackages = { tensorflow = "2.21" }\n', "2.21"),
])
def test_parse_rejects_typos_that_would_widen_or_hide_a_scope(text, message):
    with pytest.raises(ValueError, match=message):
        known_failures.parse(text)


# ------------------------------------------------------------------ verdicts and failure tables


def showers(n_events=40, seed=0):
    rng = np.random.default_rng(seed)
    energy = np.repeat([30.0, 120.0], n_events // 2)
    ecal = rng.gamma(2.0, 1e-3, size=(n_events, 8, 8, 8)) * energy[:, None, None, None] / 60
    return ecal.astype(np.float32), energy


def test_identical_showers_pass_every_paired_check():
    ecal, energy = showers()
    verdict = check_paired(ecal, ecal.copy(), energy, reqs(total_energy_mean=1e-9))
    assert verdict.ok and verdict.status == OK
    verdict.raise_if_failed()


def test_a_shift_fails_naming_observable_energy_bin_and_interval():
    ecal, energy = showers()
    scaled = ecal * np.where(energy > 100, 1.1, 1.0)[:, None, None, None].astype(np.float32)
    verdict = check_paired(ecal, scaled, energy, reqs(total_energy_mean=0.05), title="m-v")
    assert len(verdict.failures) == 1
    assert verdict.failures[0].startswith("total_energy_mean at 50-150 GeV: shift +10.00% [+10.00%, +10.00%]")
    with pytest.raises(ToleranceExceeded) as caught:
        verdict.raise_if_failed()
    message = str(caught.value)
    assert message.startswith("m-v (40 showers): 1 beyond requirement:")
    assert "requirement  status" in message and "FAIL" in message and "array(" not in message
    row = next(line for line in message.splitlines() if line.startswith("total_energy_mean ") and "50-150" in line)
    assert row.split()[-2:] == ["5.00%", "FAIL"]


def test_showers_outside_the_energy_bins_are_never_a_silent_pass():
    ecal, energy = showers()
    far = energy * 100  # 3000 and 12000 GeV: outside every bin
    verdict = check_paired(ecal, ecal * 10, far, reqs(total_energy_mean=0.05))
    assert verdict.status == UNRESOLVED and "40 of 40 showers outside the energy bins" in verdict.unresolved[0]
    with pytest.raises(Unresolved):
        verdict.raise_if_failed()
    half = np.where(energy > 100, energy * 100, energy)
    verdict = check_paired(ecal, ecal.copy(), half, reqs(total_energy_mean=0.05))
    assert verdict.ok and "20 of 40 showers outside" in verdict.report()


def _noisy(ecal, energy, spread, seed=5):
    rng = np.random.default_rng(seed)
    return ecal * rng.normal(1.0, spread, (len(energy), 1, 1, 1)).astype(np.float32)


def test_a_shift_the_statistics_cannot_resolve_is_not_a_pass():
    ecal, energy = showers()
    verdict = check_paired(ecal, _noisy(ecal, energy, 0.05), energy, reqs(total_energy_mean=0.01))
    assert verdict.status == UNRESOLVED and not verdict.ok and not verdict.failures
    with pytest.raises(Unresolved, match="cannot tell"):
        verdict.raise_if_failed()


def test_sequential_check_grows_the_sample_only_while_it_cannot_tell():
    ecal, energy = showers(400)
    order = np.random.default_rng(0).permutation(400)
    ecal, energy = ecal[order], energy[order]
    noisy = _noisy(ecal, energy, 0.02)
    asked = []

    def pair(n):
        asked.append(n)
        return ecal[:n], noisy[:n], energy[:n]
    verdict = paired_sequential(pair, (20, 400), reqs(total_energy_mean=0.008))
    assert asked == [20, 400] and verdict.status == OK
    asked.clear()

    def scaled(n):
        asked.append(n)
        return ecal[:n], noisy[:n] * np.float32(1.1), energy[:n]
    assert paired_sequential(scaled, (20, 400), reqs(total_energy_mean=0.01)).status == FAIL and asked == [20]


def test_nan_is_never_within_tolerance():
    assert within(0.01, 0.02) and within(-0.02, 0.02)
    assert not within(math.nan, 1.0) and not within(0.03, 0.02)


def test_report_of_a_passing_verdict_says_so():
    assert Verdict("m-v", "table").report().startswith("m-v: keeps the physics")


# ------------------------------------------------------------------ the data files themselves


def test_known_failures_name_registered_variants_and_configured_models():
    from quant import registry

    settings = load_settings()
    for entry in known_failures.load():
        assert entry.variant in registry.names()
        assert set(entry.models) <= set(settings.models)
        assert entry.reason and entry.measured
