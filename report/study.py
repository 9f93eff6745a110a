"""The report's study: :mod:`study.runner` with the versions of every runtime stated, stamped with the report's
schema and normalised to JSON. The report only renders what this returns.

Everything else (choosing models and variants, building each variant once and releasing it, timing, physics
checks, typed results) is :mod:`study`; the names below are re-exported for ``report.cli`` and the tests.
"""

from __future__ import annotations

from study.runner import (
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

__all__ = ["DEFAULT_BATCH_SIZES", "DEFAULT_PAIRS", "DEFAULT_SHOWERS", "MEMORY_BUDGET_BYTES", "REPORT_PACKAGES",
           "Progress", "Study", "StudyConfig", "StudyError", "left_out_by_default", "packages", "resolve_models",
           "resolve_variants", "run_study"]

REPORT_PACKAGES = ("matplotlib", "mplhep")  # the figures'


def packages() -> tuple[str, ...]:
    """Import names whose versions results.json states: gan.machine's base, every variant family's runtime
    (quant.registry.runtime_packages), the figures'."""
    from gan.machine import BASE_PACKAGES
    from quant import registry

    return tuple(dict.fromkeys(BASE_PACKAGES + registry.runtime_packages() + REPORT_PACKAGES))


def run_study(config: StudyConfig, progress: Progress | None = None) -> Study:
    """Run every model x variant of ``config`` (study.runner.run_study); returns the results (see report.results)
    and the figure samples."""
    from report.results import SCHEMA_VERSION, to_jsonable
    from study import runner

    study = runner.run_study(config, progress, packages())
    study.results = to_jsonable({"schema": SCHEMA_VERSION} | study.results)  # as read back from results.json
    return study
