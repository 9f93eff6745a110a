"""The validation suite's own logic, without TensorFlow: tolerance lookup and derivation, known-failure scoping,
verdicts and their failure tables, and the consistency of the data files in validation/."""

import math

import numpy as np
import pytest

from gan.paired import PAIRED_OBSERVABLES
from validation import known_failures, tolerances
from validation.checks import ToleranceExceeded, Verdict, check_geant4, check_paired, within
from validation.known_failures import KnownFailure, Stack
from validation.samples import load_settings

TABLE = {
    "margin": {"paired": 2.0, "geant4": 3.0, "paired_keys": {"hits_mean": 4.0}, "geant4_keys": {}},
    "measured": {"m": {"showers_per_bin": 200, "geant4_reference_events": 500}},
    "paired": {"m": {name: {"floor": 0.01, "tolerance": 0.02} for name in PAIRED_OBSERVABLES}},
    "geant4": {"m": {"accuracy_metric": {"total": {"floor": 0.1, "g4_halves": 0.05, "tolerance": 0.3}},
                     "separation_power": {"hits": {"floor": 0.01, "g4_halves": 0.04, "tolerance": 0.03}}}},
    "overrides": {"paired": {"m": {"v1": {"hits_mean": {"tolerance": 0.5, "reason": "test"}}}}},
}
HERE = Stack(frozenset({"avx512_vnni", "amx_bf16"}), {"tensorflow": "2.21.0", "openvino": "2026.4.1"})


# ------------------------------------------------------------------ tolerances


def test_tolerance_is_margin_times_floor():
    assert tolerances.derive(0.01, 2.0) == pytest.approx(0.02)
    assert tolerances.derive(0.0, 3.0) == 0.0


@pytest.mark.parametrize("floor, margin", [(-0.1, 2.0), (math.nan, 2.0), (0.1, 0.0), (math.inf, 1.0)])
def test_derive_rejects_bad_floors_and_margins(floor, margin):
    with pytest.raises(ValueError, match="floor"):
        tolerances.derive(floor, margin)


def test_margin_of_a_key_overrides_the_checks_margin():
    assert tolerances.margin(TABLE, "paired", "hits_mean") == 4.0
    assert tolerances.margin(TABLE, "paired", "total_energy_mean") == 2.0
    assert tolerances.margin(TABLE, "geant4", "fpd.all") == 3.0


def test_paired_lookup_applies_overrides_only_to_their_variant():
    assert tolerances.paired_tolerances(TABLE, "m", "v1")["hits_mean"] == 0.5
    assert tolerances.paired_tolerances(TABLE, "m", "v2")["hits_mean"] == 0.02
    assert set(tolerances.paired_tolerances(TABLE, "m", "v2")) == set(PAIRED_OBSERVABLES)


def test_only_separation_powers_scale_with_sample_size():
    at_20 = tolerances.paired_tolerances(TABLE, "m", "v2", showers_per_bin=20)
    assert at_20["cell_energy_spectrum"] == pytest.approx(0.2)  # 0.02 x 200 / 20
    assert at_20["total_energy_mean"] == 0.02
    at_100 = tolerances.geant4_tolerances(TABLE, "m", "v2", reference_events=100)
    assert at_100 == pytest.approx({"accuracy_metric.total": 0.3, "separation_power.hits": 0.15})
    assert tolerances.sample_size_factor(200, None) == 1.0


def test_tolerances_of_other_weights_are_stale():
    table = {"measured": {"m": {"weights_sha256": "ab" * 32}}}
    assert tolerances.stale_reason(table, "m", "ab" * 32) is None
    assert tolerances.stale_reason(table, "other", "cd" * 32) is None  # nothing recorded: nothing to compare
    assert "noise_floors --models m --write" in tolerances.stale_reason(table, "m", "cd" * 32)


def test_missing_model_says_how_to_measure_it():
    with pytest.raises(tolerances.ToleranceTableError, match="noise_floors --models other --write"):
        tolerances.paired_tolerances(TABLE, "other", "v1")


def test_rederive_uses_todays_margins():
    table = {**TABLE, "margin": {**TABLE["margin"], "paired": 5.0}}
    paired, geant4 = tolerances.rederive(table)
    assert paired["m"]["total_energy_mean"]["tolerance"] == pytest.approx(0.05)
    assert paired["m"]["hits_mean"]["tolerance"] == pytest.approx(0.04)  # its own margin 4
    assert geant4["m"]["separation_power"]["hits"] == {"floor": 0.01, "g4_halves": 0.04, "tolerance": 0.03}


def test_write_keeps_the_head_and_replaces_the_measured_part(tmp_path):
    path = tmp_path / "tolerances.toml"
    path.write_text(f"# doc\n[margin]\npaired = 2.0\ngeant4 = 3.0\n\n{tolerances.GENERATED_MARKER}\n[old]\nx = 1\n")
    paired, geant4 = tolerances.rederive(TABLE)
    tolerances.write(tolerances.render_measured({"m": {"date": "2025-11-28", "showers_per_bin": 200}}, paired,
                                                geant4), path)
    text = path.read_text()
    assert text.startswith("# doc\n[margin]") and "[old]" not in text
    table = tolerances.load(path)
    assert table["measured"]["m"] == {"date": "2025-11-28", "showers_per_bin": 200}
    assert table["paired"]["m"]["hits_mean"] == {"floor": 0.01, "tolerance": 0.04}
    assert table["geant4"]["m"]["accuracy_metric"]["total"]["g4_halves"] == 0.05


# ------------------------------------------------------------------ known failures


def failure(**scope):
    return KnownFailure("bf16-full", "conv1 bug", **scope)


@pytest.mark.parametrize("scope, model, check, expected", [
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


@pytest.mark.parametrize("text, message", [
    ('[[failure]]\nvariant = "x"\nreason = "r"\nmodel = ["default"]\n', "unknown field"),
    ('[[failure]]\nvariant = "x"\n', "missing"),
    ('[[failure]]\nvariant = "x"\nreason = "r"\nchecks = ["speed"]\n', "unknown checks"),
    ('[[failure]]\nvariant = "x"\nreason = "r"\nsamples = ["large"]\n', "unknown samples"),
    ('[[failure]]\nvariant = "x"\nreason = "r"\npackages = { tensorflow = "2.21" }\n', "2.21"),
])
def test_parse_rejects_typos_that_would_widen_or_hide_a_scope(text, message):
    with pytest.raises(ValueError, match=message):
        known_failures.parse(text)


def test_package_version_finds_the_distribution_behind_an_import_name():
    assert known_failures.package_version("numpy") == np.__version__
    assert known_failures.package_version("no_such_package_xyz") is None


# ------------------------------------------------------------------ verdicts and failure tables


def showers(n_events=12, seed=0):
    rng = np.random.default_rng(seed)
    energy = np.repeat([30.0, 120.0], n_events // 2)
    ecal = rng.gamma(2.0, 1e-3, size=(n_events, 8, 8, 8)) * energy[:, None, None, None] / 60
    return ecal.astype(np.float32), energy


def loose(**tight):
    return {name: tight.get(name, 10.0) for name in PAIRED_OBSERVABLES}


def test_identical_showers_pass_every_paired_check():
    ecal, energy = showers()
    verdict = check_paired(ecal, ecal.copy(), energy, [10, 50, 150], loose(total_energy_mean=0.0))
    assert verdict.ok
    verdict.raise_if_failed()


def test_a_shift_fails_naming_observable_and_energy_bin():
    ecal, energy = showers()
    scaled = ecal * np.where(energy > 100, 1.1, 1.0)[:, None, None, None].astype(np.float32)
    verdict = check_paired(ecal, scaled, energy, [10, 50, 150], loose(total_energy_mean=0.05), title="m-v")
    assert len(verdict.failures) == 1
    assert verdict.failures[0].startswith("total_energy_mean at 50-150 GeV: shift +10.00%")
    with pytest.raises(ToleranceExceeded) as caught:
        verdict.raise_if_failed()
    message = str(caught.value)
    assert message.startswith("m-v: 1 beyond tolerance:")
    assert "tolerance  status" in message and "FAIL" in message and "array(" not in message
    row = next(line for line in message.splitlines() if line.startswith("total_energy_mean ") and "50-150" in line)
    assert row.split()[-3:] == ["+10.00%", "5.00%", "FAIL"]


def test_paired_check_needs_a_tolerance_for_every_observable():
    ecal, energy = showers()
    with pytest.raises(KeyError, match="hits_mean"):
        check_paired(ecal, ecal, energy, [10, 50, 150], {k: 1.0 for k in PAIRED_OBSERVABLES if k != "hits_mean"})


def test_nan_is_never_within_tolerance():
    assert within(0.01, 0.02) and within(-0.02, 0.02)
    assert not within(math.nan, 1.0) and not within(0.03, 0.02)


def test_geant4_check_is_one_sided():
    fp32 = {"fpd.all": 1.0, "kpd.all": 0.1, "accuracy_metric.total": 0.5}
    tol = {"fpd.all": 0.2, "kpd.all": 0.05, "accuracy_metric.total": 0.1}
    better = check_geant4(fp32, {"fpd.all": 0.2, "kpd.all": -0.3, "accuracy_metric.total": 0.55}, tol)
    assert better.ok
    worse = check_geant4(fp32, {"fpd.all": 1.5, "kpd.all": math.nan, "accuracy_metric.total": 0.6}, tol, "m-v")
    assert [line.split(":")[0] for line in worse.failures] == ["fpd.all", "kpd.all"]
    assert "fpd.all: FP32 1 -> variant 1.5 (increase +0.5, tolerance 0.2)" in worse.report()
    assert worse.table.splitlines()[0].split() == ["distance", "to", "Geant4", "FP32", "variant", "increase",
                                                   "tolerance", "status"]


def test_report_of_a_passing_verdict_says_so():
    assert Verdict("m-v", "table").report().startswith("m-v: all within tolerance")


# ------------------------------------------------------------------ the data files themselves


def test_every_measured_tolerance_is_its_margin_times_its_floor():
    """Stored to 4 significant digits; a margin edited without re-deriving shows up here."""
    table = tolerances.load()
    for check, key, entry in measured_entries(table):
        assert entry["tolerance"] == pytest.approx(tolerances.derive(entry["floor"], tolerances.margin(
            table, check, key)), rel=1e-3), f"{key}: run python -m validation.noise_floors --rederive --write"


def measured_entries(table):
    for entries in table.get("paired", {}).values():
        yield from (("paired", name, entry) for name, entry in entries.items())
    for distances in table.get("geant4", {}).values():
        for distance, groups in distances.items():
            yield from (("geant4", f"{distance}.{features}", e) for features, e in groups.items())


def test_every_model_has_every_tolerance_the_suite_asks_for():
    table, settings = tolerances.load(), load_settings()
    for model in settings.models:
        assert set(tolerances.paired_tolerances(table, model, "any")) == set(PAIRED_OBSERVABLES)
    for model in settings.geant4_models:
        keys = set(tolerances.geant4_tolerances(table, model, "any"))
        assert {"accuracy_metric.total", "fpd.all", "kpd.all", "separation_power.sampling_fraction"} <= keys


def test_known_failures_name_registered_variants_and_configured_models():
    from quant import registry

    settings = load_settings()
    for entry in known_failures.load():
        assert entry.variant in registry.names()
        assert set(entry.models) <= set(settings.models)
        assert entry.reason and entry.measured
