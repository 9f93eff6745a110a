"""Benchmark suite plumbing: options, parametrization, built-once variants, machine info, the end-of-session table.

    pytest benchmarks --benchmark-compare              # measure; compare with the last saved run; save this one
    pytest benchmarks --variants bf16,openvino-* --batch-sizes 128 --threads 2
    pytest benchmarks --gate                           # CI: only the floors of speedup_floors.toml, fail below them

The gate measures the floor that applies here for each (model, variant, batch) of speedup_floors.toml (this CPU
class and thread count, else a conservative "any" floor); when none applies, or none could be measured, it fails
with a message saying so (``--gate-allow-none``: pass instead), so a green gate always gated something.

``--benchmark-compare`` implies ``--benchmark-autosave`` here (``--no-autosave`` turns that off), so running the
command twice compares the second run with the first; with no saved run yet it says so and measures. Runs made
on CPUs with another instruction set (AMX, AVX512-VNNI, ...) are refused for comparison. The table of showers/s
and speed-ups is printed at the end and written as JSON (``--speedups-json``).
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass, field

import pytest

from benchmarks import floors, geant4, machine, summary
from benchmarks import settings as bench_settings
from gan import cli_types
from gan.machine import package_version, requested_threads

SHARED_MODEL = "cern2017"  # weights from ../shared (or a cached download): skipped without them
DEFAULT_JSON = ".benchmarks/speedups.json"
# TF warns on every TFLite int8 conversion without input statistics; the variant's input and output stay float32
BUILD_WARNINGS = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs were expected:UserWarning")
NO_BASELINE = "Can't compare"  # start of pytest-benchmark's warning when there is no saved run
MACHINE_DIFFERS = "Benchmark machine_info is different"


@dataclass
class BenchState:
    """What one session measures and has measured."""

    settings: bench_settings.Settings
    floor_table: floors.FloorTable
    threads: int
    gate: bool
    timing: bench_settings.Timing
    notes: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    threads_applied: dict | None = None
    geant4_source: str = ""
    json_path: str = ""
    selection: list[tuple[str, str, int]] = field(default_factory=list)  # (model, variant, batch) to measure


STATE = pytest.StashKey[BenchState]()


def pytest_addoption(parser):
    group = parser.getgroup("calogan benchmarks")
    group.addoption("--models", help="comma-separated models or patterns, or 'all' (default: settings.toml's models)")
    group.addoption("--variants", help="comma-separated variants or fnmatch patterns, or 'all' (default: every "
                    "registered variant but the slow ones of benchmarks/settings.toml: tflite-*, *-tuned)")
    group.addoption("--skip-variants", help="comma-separated variants or patterns to leave out")
    group.addoption("--batch-sizes", help="comma-separated batch sizes (default: 1,32,128)")
    group.addoption("--threads", type=cli_types.threads, default=None,
                    help="threads for every variant family's runtime (default: $CALOGAN_THREADS, else all usable "
                    "CPUs)")
    group.addoption("--gate", action="store_true", default=False,
                    help="CI gate: measure only the floors of benchmarks/speedup_floors.toml that apply here and "
                         "fail a test whose speed-up is below its floor")
    group.addoption("--gate-allow-none", action="store_true", default=False,
                    help="with --gate: pass when no floor applies to this CPU class and thread count (else it fails)")
    group.addoption("--gate-timing", action="store_true", default=False,
                    help="use the gate's longer timing ([gate] of settings.toml) without gating")
    group.addoption("--floors", default=str(floors.FLOORS_FILE), help="the floors and targets file "
                    "(default: benchmarks/speedup_floors.toml)")
    group.addoption("--speedups-json", default=DEFAULT_JSON, help=f"where to write the table as JSON ({DEFAULT_JSON})")
    group.addoption("--no-autosave", action="store_true", default=False,
                    help="do not save the run when --benchmark-compare is given")


def _state(config) -> BenchState:
    return config.stash[STATE]


def _new_state(config) -> BenchState:
    try:
        settings = bench_settings.load()
        threads = requested_threads(config.getoption("threads"))
        table = floors.load(config.getoption("floors"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    gate = config.getoption("gate")
    timing = settings.gate_timing if gate or config.getoption("gate_timing") else settings.timing
    return BenchState(settings, table, threads, gate, timing)


def _imply_autosave(config, state: BenchState) -> None:
    option = config.option
    if not option.benchmark_compare or option.benchmark_save or option.benchmark_autosave or option.no_autosave:
        return
    from pytest_benchmark.utils import get_tag

    option.benchmark_autosave = get_tag(config.getoption("benchmark_project_name", None))
    state.notes.append("--benchmark-compare: this run is saved as well (--benchmark-autosave; --no-autosave: don't)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Set up the session before pytest-benchmark (configured last) loads the run to compare with.

    pytest-benchmark warns when there is no saved run or the saved machine info differs; with filterwarnings=error
    that would abort the run, so both are silenced here and said as notes instead (header and compare hook).
    """
    from pytest_benchmark.logger import PytestBenchmarkWarning

    state = config.stash[STATE] = _new_state(config)
    state.selection = _selection(config, state)  # bad --models/--variants/--batch-sizes: a usage error, here
    if state.gate:
        _check_something_gates(config, state)
    _imply_autosave(config, state)
    for message in (NO_BASELINE, MACHINE_DIFFERS):
        warnings.filterwarnings("ignore", message=re.escape(message), category=PytestBenchmarkWarning)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    state, bench = _state(session.config), getattr(session.config, "_benchmarksession", None)
    if bench is not None and bench.compare and not bench.compared_mapping:
        saving = "this run is saved, and " if bench.autosave or bench.save else ""
        state.notes.append(f"no saved run to compare with yet in {bench.storage}: {saving}the next "
                           "`pytest benchmarks --benchmark-compare` compares with it")


def pytest_report_header(config):
    return [f"benchmarks: {note}" for note in _state(config).notes]


def pytest_benchmark_update_machine_info(config, machine_info):
    machine.update_machine_info(machine_info, _state(config).threads)


@pytest.hookimpl(wrapper=True)
def pytest_benchmark_compare_machine_info(config, benchmarksession, machine_info, compared_benchmark):
    """Refuse runs from a CPU with another instruction set; note other differences (instead of pytest-benchmark's
    warning, which dumps both dicts)."""
    saved = compared_benchmark.get("machine_info", {})
    name = f"the saved run of {compared_benchmark.get('datetime', '?')}"
    why = machine.isa_mismatch(machine_info, saved, name)
    if why:
        raise pytest.UsageError(
            f"refusing to compare: {why}. Speed-ups on different instruction sets are different experiments; "
            "compare with a run from this CPU type (--benchmark-compare=NNNN) or keep one --benchmark-storage "
            "per CPU type.")
    differing = machine.differing_keys(machine_info, saved)
    if differing:
        _state(config).notes.append(f"{name} differs from this machine in {', '.join(differing)} (same ISA: "
                                    "compared)")
    try:
        return (yield)
    except ValueError:  # pytest-benchmark 5.3's own hook cannot word its warning for a storage outside the cwd
        return []


def _param_marks(model: str, variant: str, batch: int, settings: bench_settings.Settings) -> list:
    from quant import registry

    if variant not in registry.names():  # only a floor can name one
        return [pytest.mark.skip(reason=f"speedup_floors.toml has a floor for '{variant}', which is not a "
                                        "registered variant: remove or rename the floor")]
    reason = registry.unavailable_reason(variant)
    if reason:
        return [pytest.mark.skip(reason=f"variant {variant} not available here: {reason}")]
    cap = settings.batch_cap(variant)
    if cap is not None and batch > cap:
        return [pytest.mark.skip(reason=f"{variant} is measured up to batch {cap} (batch_caps in "
                                        "benchmarks/settings.toml: too slow, or fails, at larger batches)")]
    return [BUILD_WARNINGS] + ([pytest.mark.shared] if model == SHARED_MODEL else [])


def _selection(config, state: BenchState) -> list[tuple[str, str, int]]:
    from gan.pretrained import MODEL_NAMES
    from quant import registry

    try:
        known = registry.names()
        models = bench_settings.select_models(config.getoption("models"), list(MODEL_NAMES), state.settings)
        variants = bench_settings.select_variants(config.getoption("variants"), config.getoption("skip_variants"),
                                                  known, state.settings)
        sizes = bench_settings.batch_sizes(config.getoption("batch_sizes"), state.settings)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not state.gate:
        return [(m, v, b) for m in models for v in variants for b in sizes]
    # the gate: every floor's (model, variant, batch), narrowed only by options given explicitly
    return [(m, v, b) for m, v, b in state.floor_table.keys()  # noqa: SIM118 - FloorTable.keys(), not a dict
            if (not config.getoption("models") or m in models)
            and (not config.getoption("variants") or v in variants)
            and (not config.getoption("batch_sizes") or b in sizes)]


def _here(state: BenchState) -> tuple:
    from gan.machine import cpu_flags

    return state.threads, cpu_flags(), package_version


def no_floor_message(threads: int, flags, floors_file: str = floors.FLOORS_FILE.name) -> str:
    klass = floors.cpu_class(flags)
    return (f"the gate gates nothing here: no speed-up floor in {floors_file} applies to this CPU (class "
            f"{klass}) with {threads} threads. Measure floors for it (python -m benchmarks.floors --measure --write, "
            f"on a quiet machine; CALOGAN_THREADS={threads} for this thread count), or pass --gate-allow-none to "
            "accept a gate that checks nothing")


def _check_something_gates(config, state: BenchState) -> None:
    """Fail the session now (before any build) when no selected floor applies here, unless --gate-allow-none."""
    here = _here(state)
    if any(state.floor_table.floor_for(*key, *here) for key in state.selection):
        return
    message = no_floor_message(state.threads, here[1], config.getoption("floors"))
    if not config.getoption("gate_allow_none"):
        raise pytest.UsageError(message)
    state.notes.append(f"--gate-allow-none: {message.split('. ')[0]}")


def _gate_skip(state: BenchState, model: str, variant: str, batch: int) -> list:
    here = _here(state)
    if state.floor_table.floor_for(model, variant, batch, *here):
        return []
    why = state.floor_table.floor_for(model, variant, batch).scope.mismatch(*here)
    return [pytest.mark.skip(reason=f"floor not gated here: {why} (measure here: python -m benchmarks.floors "
                                    "--measure --write)")]


def pytest_generate_tests(metafunc):
    if not {"model", "variant", "batch_size"} <= set(metafunc.fixturenames):
        return
    state = _state(metafunc.config)
    params = [pytest.param(m, v, b, id=f"{m}-{v}-b{b}",
                           marks=_param_marks(m, v, b, state.settings)
                           + (_gate_skip(state, m, v, b) if state.gate else []))
              for m, v, b in state.selection]
    if not params:
        params = [pytest.param(None, None, None, id="nothing-selected", marks=pytest.mark.skip(
            reason="no speed-up floor to gate in speedup_floors.toml" if state.gate else "nothing selected"))]
    metafunc.parametrize(("model", "variant", "batch_size"), params)


@pytest.fixture(scope="session")
def bench_state(request) -> BenchState:
    return _state(request.config)


@pytest.fixture(scope="session")
def threads_applied(bench_state) -> dict:
    """Threads requested from each runtime (before any variant is built) and what each one got."""
    if bench_state.threads_applied is None:
        bench_state.threads_applied = machine.apply_threads(bench_state.threads)
    return bench_state.threads_applied


@pytest.fixture(scope="session")
def session(bench_state, threads_applied):
    """The study runner's study.session.Session: each model's generator and each (model, variant) built once."""
    from study.session import Session

    return Session(bench_state.settings.calibration_showers, bench_state.settings.calibration_seed)


@pytest.fixture(scope="session")
def builds(session):
    """(model, variant) -> (built variant, build seconds) from the session; skips a variant not available here."""
    from quant.base import VariantUnavailable

    def get(model: str, name: str):
        try:
            built = session.built(model, name)
        except VariantUnavailable as exc:
            pytest.skip(f"variant {name} not available here: {exc.reason}")
        return built.variant, built.build_s
    return get


@pytest.fixture(scope="session")
def bench_inputs(bench_state):
    """(model, batch) -> seeded inputs (energies uniform over the model's trained range) for one batch."""
    import functools

    from gan.pretrained import trained_energy_range
    from study.inputs import uniform_inputs

    return functools.cache(lambda model, batch: uniform_inputs(f"b{batch}", batch, trained_energy_range(model),
                                                               bench_state.settings.input_seed))


@pytest.fixture(scope="session")
def geant4_bins(bench_state) -> list[dict] | None:
    """Median Geant4 CPU seconds per event per energy bin (None, with a note, if no Geant4 timing is readable)."""
    try:
        timing = geant4.load_timing()
    except ValueError as exc:
        bench_state.notes.append(f"no speed-up over Geant4: {exc}")
        return None
    bench_state.geant4_source = f"{timing.source} ({len(timing.cpu_s)} events)"
    from gan.physics import geant4_cpu_per_bin

    return geant4_cpu_per_bin(timing.energy, timing.cpu_s, bench_state.settings.geant4_edges_gev)


@pytest.fixture
def model_ready(model, request) -> str:
    """The model, once its weights are here (cern2017: else skipped through the cern_weights fixture)."""
    if model == SHARED_MODEL:
        request.getfixturevalue("cern_weights")
    return model


@pytest.fixture(scope="session")
def known_physics_failures():
    """(model, variant) -> 'known failure' where verdict/known_failures.toml registers a paired failure here."""
    from gan.machine import Here
    from verdict import known_failures

    failures, stack = known_failures.load(), Here.now()
    return lambda model, variant: ("known failure" if known_failures.find(failures, model, variant, "paired", stack)
                                   else "")


def _rows_in_order(state: BenchState) -> list[dict]:
    order = {name: i for i, name in enumerate(dict.fromkeys(r["variant"] for r in state.rows))}
    return sorted(state.rows, key=lambda r: (r["model"], r["batch"], r["variant"] != state.settings.reference,
                                             order[r["variant"]]))


def _best_int8_lines(state: BenchState) -> list[str]:
    from gan.machine import cpu_flags

    lines = []
    for batch in sorted({r["batch"] for r in state.rows}):
        target = state.floor_table.target_for(floors.BEST_INT8, batch)
        if target is None:
            continue
        best = summary.best_int8(state.rows, batch)
        why = target.scope.mismatch(state.threads, cpu_flags(), package_version)
        aim = f"aim >= {target.speedup:g}x ({target.source}): " + (
            f"not applicable here ({why})" if why else "no int8 variant measured" if best is None
            else "met" if best["speedup"]["median"] >= target.speedup else "not met")
        found = (f"{best['model']}-{best['variant']} {best['speedup']['median']:.2f}x" if best else "none")
        lines.append(f"best INT8 variant at batch {batch} without a known physics failure here: {found}; {aim}")
    return lines


def _add_last_run(state: BenchState, bench) -> None:
    """Each row's speed-up and showers/s in the compared run (pytest-benchmark's extra_info), if it has the test."""
    for compared in (bench.compared_mapping or {}).values() if bench is not None else ():
        for row in state.rows:
            info = compared.get(row["test_id"], {}).get("extra_info")
            if info and "showers_per_s" in info:
                row["last_run"] = {"speedup": info.get("speedup"), "showers_per_s": info["showers_per_s"]}
            else:
                row["last_run"] = None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Write the JSON table; before pytest-benchmark saves, drop an autosave when nothing was measured."""
    state, bench = _state(session.config), getattr(session.config, "_benchmarksession", None)
    gated = sum(1 for r in state.rows if r.get("floor") and r["floor"]["verdict"])
    checking = state.gate and not session.config.option.collectonly
    if checking and not gated and not session.config.getoption("gate_allow_none"):
        state.notes.append("GATE FAILED: no floor was measured (every gated test was skipped: see the skip "
                           "reasons); --gate-allow-none accepts that")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif checking:
        state.notes.append(f"gate: {gated} floor(s) checked on this {floors.cpu_class(_here(state)[1])} CPU with "
                           f"{state.threads} threads")
    if bench is not None and not bench.benchmarks and bench.autosave:
        bench.autosave = None  # else pytest-benchmark warns 'Not saving anything', an error under filterwarnings
        state.notes.append("nothing was measured: nothing saved")
    _add_last_run(state, bench)
    if state.rows:
        state.json_path = str(summary.write_json(session.config.getoption("speedups_json"), {
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine.machine_info(state.threads),
            "threads_applied": state.threads_applied, "geant4_source": state.geant4_source,
            "gate": state.gate, "rows": _rows_in_order(state), "best_int8": _best_int8_lines(state),
            "notes": state.notes}))
    return (yield)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state, tr = _state(config), terminalreporter
    if not state.rows:
        for note in state.notes:
            tr.write_line(f"benchmarks: {note}")
        return
    tr.write_sep("=", f"speed-ups over {state.settings.reference} ({state.threads} threads"
                      f"{', gate' if state.gate else ''})")
    tr.write_line(summary.format_table(_rows_in_order(state)))
    tr.write_line("")
    for line in _best_int8_lines(state):
        tr.write_line(line)
    batch_notes = sorted({n for r in state.rows for n in r.get("notes", ())})
    threads = "; ".join(f"{k} {v}" for k, v in (state.threads_applied or {}).items())
    for line in [*batch_notes, f"threads: {threads}",
                 f"vs Geant4/core: median Geant4 CPU s/event per energy bin ({state.geant4_source}) over the "
                 f"variant's s/shower x {state.threads} threads; range over bins (per bin in the JSON)",
                 "physics: 'known failure' = registered in verdict/known_failures.toml for this stack; "
                 "`pytest validation` gives the verdicts (CI runs it)",
                 "floor: gated with --gate (fails when the interval's upper end is below the floor); "
                 "absolute times are trend data only", *state.notes,
                 f"table as JSON: {state.json_path}"]:
        tr.write_line(line)
