"""The report's study: :mod:`study.runner` run with the validation suite's settings (seeds, energy bins, Geant4
models), stamped with the report's schema and normalised to JSON. The report only renders what this returns.

Everything else (choosing models and variants, building each variant once and releasing it, timing, physics
checks, typed results) is :mod:`study`; the names below are re-exported for ``report.cli`` and the tests.
"""

from __future__ import annotations

from study.runner import (  # noqa: F401 - re-exported
    DEFAULT_BATCH_SIZES,
    DEFAULT_PAIRS,
    DEFAULT_SHOWERS,
    MEMORY_BUDGET_BYTES,
    Progress,
    Study,
    StudyConfig,
    StudyError,
    left_out_by_default,
    resolve_models,
    resolve_variants,
)

# import names whose versions results.json states (the variants' runtimes included)
PACKAGES = ("tensorflow", "keras", "numpy", "scipy", "h5py", "openvino", "nncf", "neural_compressor",
            "ai_edge_litert", "matplotlib", "mplhep")


def run_study(config: StudyConfig, progress: Progress | None = None) -> Study:
    """Run every model x variant of ``config`` (study.runner.run_study); returns the results (see report.results)
    and the figure samples."""
    from report.results import SCHEMA_VERSION, to_jsonable
    from study import runner
    from validation.samples import load_settings

    settings = load_settings()
    sample_size = "full" if config.showers >= min(load_settings(full=True).paired_showers) else "default"
    study = runner.run_study(config, settings, progress, PACKAGES, sample_size)
    study.results = to_jsonable({"schema": SCHEMA_VERSION} | study.results)  # as read back from results.json
    return study
