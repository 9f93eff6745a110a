"""``python -m report``: run the study and write a report folder (report.md, report.html, PNG figures, results.json).

Default: the embedded default model (plus cern2017 where its weights are found), every registered variant that
can run here, small samples so that it takes a few minutes on 2 cores. The folder is written under a temporary
name and renamed at the end, so an interrupted run leaves nothing half-written (and the next run removes what
a killed one left); an existing non-empty folder is never overwritten without ``--overwrite``, and even then only
a report folder this suite wrote that holds nothing else. ``--compare OLD/results.json`` prints what moved.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import datetime
from pathlib import Path

from gan.cli_types import int_list, name_list, positive_int
from gan.outputs import OutputError, check_replaceable, clean_stale, publish_dir, temp_dir, write_marker
from report import results as results_io

DEFAULT_ROOT = Path("reports")
REPORT_KIND = "report"
REPORT_SUFFIXES = {".md", ".html", ".png", ".json"}  # what reports written before the marker existed hold


class ReportError(ValueError):
    """Bad arguments or an output folder that must not be touched; one line for the user."""


def parser() -> argparse.ArgumentParser:
    from report.study import DEFAULT_BATCH_SIZES, DEFAULT_PAIRS, DEFAULT_SHOWERS

    p = argparse.ArgumentParser(prog="python -m report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", type=name_list,
                   help="comma-separated variants, or 'all' (default: every registered one except the slow-to-build "
                        "tuned ones; fp32 is always the reference)")
    p.add_argument("--models", type=name_list, help="comma-separated models: default, cern2017 (default: default, "
                                                    "plus cern2017 where its weights are found)")
    p.add_argument("--showers", type=positive_int, default=DEFAULT_SHOWERS,
                   help=f"showers per model and variant (and Geant4 reference events): the first paired stage "
                        f"(default {DEFAULT_SHOWERS})")
    p.add_argument("--max-showers", type=positive_int, metavar="N",
                   help="a variant whose paired verdict is 'cannot tell' gets more showers, as `pytest validation` "
                        "gives them: the next stages of study/settings.toml [paired] showers above --showers "
                        "(100 -> 400 -> 1000; from 1000 up its showers_full, 1000 -> 3000), up to N (default: the "
                        "largest stage; N = --showers: no growth). Geant4-side checks keep --showers events")
    p.add_argument("--batch-sizes", type=int_list, default=DEFAULT_BATCH_SIZES,
                   help=f"batch sizes timed, comma-separated (default {','.join(map(str, DEFAULT_BATCH_SIZES))})")
    p.add_argument("--pairs", type=positive_int, default=DEFAULT_PAIRS,
                   help=f"most FP32/variant pairs per speed measurement (default {DEFAULT_PAIRS})")
    p.add_argument("--no-speed", action="store_true", help="physics only: no speed measurements")
    p.add_argument("--out", help="report folder (default reports/<date-time>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a report folder this suite wrote (refused if it holds other files)")
    p.add_argument("--compare", metavar="OLD", help="an earlier results.json (or its folder): print what moved")
    p.add_argument("--compare-only", metavar="NEW", help="with --compare: compare OLD with this results.json "
                                                         "instead of running a study")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _legacy_report_files(folder: Path) -> list[str] | None:
    """The files of a report written before the marker existed: results.json of ours plus report-like files."""
    try:
        results_io.read(folder)
    except results_io.ResultsError:
        return None
    return [p.name for p in folder.iterdir() if p.is_file() and p.suffix in REPORT_SUFFIXES]


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse an existing file or non-empty folder; with ``overwrite``, anything but a report of ours."""
    check_replaceable(out, REPORT_KIND, overwrite, legacy=_legacy_report_files)


def default_out() -> Path:
    return DEFAULT_ROOT / datetime.now().strftime("%Y-%m-%d_%H%M%S")


def write_report(study, out: Path, comparison: str | None, progress) -> None:
    from report import figures, render

    clean_stale(out)  # what a killed run left beside it
    tmp = temp_dir(out)
    try:
        results_io.write(study.results, tmp / results_io.RESULTS_FILE)
        figure_files = figures.write_figures(study.results, study.samples, tmp, progress)
        sensitivity = render.sensitivity_blocks(figures.write_sensitivity_figures(list(study.results["models"]), tmp))
        blocks = render.build_blocks(study.results, figure_files, sensitivity, comparison)
        (tmp / "report.md").write_text(render.to_markdown(blocks))
        (tmp / "report.html").write_text(render.to_html(blocks, tmp))
        for path in tmp.iterdir():
            path.chmod(0o644)  # some writers (mkstemp) leave 0600
        write_marker(tmp, REPORT_KIND).chmod(0o644)
        tmp.chmod(0o755)
        publish_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args) -> int:
    from report import study as study_mod

    if args.compare_only:
        if not args.compare:
            raise ReportError("--compare-only NEW needs --compare OLD")
        old, new = results_io.read(args.compare), results_io.read(args.compare_only)
        print(results_io.format_diff(results_io.diff(old, new), args.compare, args.compare_only))
        return 0
    out = Path(args.out) if args.out else default_out()
    check_target(out, args.overwrite)
    old = results_io.read(args.compare) if args.compare else None
    variants, unavailable = study_mod.resolve_variants(args.variants)
    models = study_mod.resolve_models(args.models)
    left_out = study_mod.left_out_by_default(variants) if args.variants is None else ()
    config = study_mod.StudyConfig(tuple(models), tuple(variants), args.showers, tuple(args.batch_sizes),
                                   not args.no_speed, args.pairs, left_out, args.max_showers)
    progress = study_mod.Progress(enabled=not args.quiet)
    progress(f"study: models {', '.join(models)}; variants {', '.join(variants) or 'none'} "
             f"({len(unavailable)} not available here); {args.showers} showers; -> {out}")
    result = study_mod.run_study(config, progress)
    comparison = None
    if old is not None:
        comparison = results_io.format_diff(results_io.diff(old, result.results), args.compare, "this run")
    write_report(result, out, comparison, progress)
    progress(f"report -> {out / 'report.md'} and {out / 'report.html'}")
    for model in result.results["models"]:
        from report.render import verdict_lines

        print(f"{model}:", *(f"  {line.replace('**', '')}" for line in verdict_lines(result.results, model)),
              sep="\n")
    if comparison:
        print("\n" + comparison)
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: its BLAS threads fight TF's on 2 cores
    from gan.data import ShowerFileError
    from gan.weights import WeightFileError
    from quant.base import VariantError
    from report.study import StudyError

    args = parser().parse_args(argv)
    try:
        return run(args)
    except (ReportError, OutputError, results_io.ResultsError, StudyError, VariantError, ShowerFileError,
            WeightFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
