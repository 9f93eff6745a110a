"""``python -m quant``: list the reduced-precision variants, build and save one, report on it, generate showers."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from gan.cli import run_command, warn
from gan.cli_types import energy_range, positive_int, seed
from gan.data import ShowerFileError
from gan.outputs import OutputError, check_new_file, check_replaceable, clean_stale, publish_dir, temp_dir, write_marker
from gan.weights import WeightFileError
from quant import registry, sensitivity, sensitivity_report
from quant.base import VariantError, VariantUnavailable, directory_size, read_variant_file, write_variant_file
from quant.calibration import TRAINING_ENERGY_RANGE_GEV
from quant.context import BuildContext

ERRORS = (VariantError, VariantUnavailable, ShowerFileError, WeightFileError, OutputError)
VARIANT_KIND = "saved variant"
SWEEP = sensitivity.SweepSettings()  # the defaults of `sensitivity` (shared with the auto-mixed build's cache)


def print_report(variant, directory) -> None:
    print(variant.op_report().format())
    print(f"size on disk: {directory_size(directory):,} bytes in {directory} "
          f"(weights: {variant.size_bytes():,} bytes)")


def cmd_list(args) -> None:
    names = registry.names()
    width = max(map(len, names))
    for name in names:
        reason = registry.unavailable_reason(name)
        print(f"{name:<{width}} {registry.get(name).description}")
        print(f"{'':<{width}} {'available' if reason is None else 'not available: ' + reason}")


def cmd_build(args) -> None:
    """Build into a hidden temporary folder next to ``--out``, then rename it: no half-written variant."""
    from gan.pretrained import extrapolation_warning, load_generator, trained_energy_range
    from quant.calibration import make_calibration

    out = Path(args.out)
    check_replaceable(out, VARIANT_KIND, args.overwrite)
    registry.get(args.variant).check()
    energies = args.calibration_energy_range or trained_energy_range(args.model)
    warn(extrapolation_warning(args.model, *energies, "calibration energies"))
    generator = load_generator(args.model)
    variant = registry.build(args.variant, generator, make_calibration(args.calibration_n, args.seed, energies),
                             args.model)
    clean_stale(out)
    tmp = temp_dir(out)
    try:
        variant.save(tmp)
        saved = read_variant_file(tmp)
        write_variant_file(tmp, saved.pop("variant"), **saved | {"model_name": str(args.model)})  # for warnings
        write_marker(tmp, VARIANT_KIND)
        tmp.chmod(0o755)
        publish_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"built '{args.variant}' from model '{args.model}' -> {out}")
    print_report(variant, out)


def cmd_report(args) -> None:
    print_report(registry.load(args.dir), args.dir)


def cmd_generate(args) -> None:
    """Stream showers batch by batch into the file; (z, E) depend only on --seed, not on the variant or batch."""
    import numpy as np
    from tqdm import tqdm

    from gan.data import ShowerWriter
    from gan.model import LATENT_SIZE
    from gan.pretrained import extrapolation_warning

    check_new_file(args.out, args.overwrite)
    variant = registry.load(args.dir)
    lo, hi = args.energy_range
    warn(extrapolation_warning(_model_of(args.dir), lo, hi, "energies"))
    z_rng, e_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(2))
    attrs = {"variant": variant.name, "variant_dir": str(args.dir), "seed": args.seed}
    with ShowerWriter(args.out, generator=f"quant:{variant.name}", attrs=attrs) as writer, \
            tqdm(total=args.n, unit="shower", desc=variant.name) as progress:
        for start in range(0, args.n, args.batch_size):
            k = min(args.batch_size, args.n - start)
            z = z_rng.standard_normal((k, LATENT_SIZE), dtype=np.float32)
            energy = e_rng.uniform(lo, hi, k).astype(np.float32)
            writer.append(variant.generate(z, energy), energy)
            progress.update(k)
    print(f"{args.n} showers from '{variant.name}' ({args.dir}), {lo:g}-{hi:g} GeV -> {args.out}")


def _model_of(directory) -> str:
    """The model a saved variant was built from, when it says so (else 'default')."""
    model = read_variant_file(directory).get("model_name")
    return model if isinstance(model, str) else "default"


def cmd_sensitivity(args) -> None:
    """Solo and reverse per-layer sweep (cached), printed and written as markdown, JSON and PNG under --out."""
    from gan.pretrained import load_generator, trained_energy_range
    from quant.calibration import make_calibration

    settings = sensitivity.SweepSettings(args.showers, args.seed, args.bins, args.pairs, args.speed_batch,
                                         args.batchnorm)
    if args.folded and args.compare:
        raise VariantError("--compare builds the original model's variants; run it without --folded")
    runtime = sensitivity.get_runtime(args.runtime)  # a runtime without per-layer control fails before loading
    stem = f"{Path(args.model).stem}{'-folded' if args.folded else ''}-{runtime.name}-{args.precision}"
    for suffix in (".md", ".json", ".png"):
        check_new_file(Path(args.out) / f"{stem}{suffix}", args.overwrite)
    generator = load_generator(args.model)
    calibration = make_calibration(args.calibration_n, args.calibration_seed, trained_energy_range(args.model))
    context, model = BuildContext.for_model(args.model), args.model
    if args.folded:  # the folded layers, judged with the original model's requirements (the same context)
        from quant.folded import folded_for

        model, generator = f"{args.model} (folded)", folded_for(generator).model
    sweep = sensitivity.run_sweep(generator, calibration, args.precision, args.runtime, context, model=model,
                                  settings=settings, reverse=not args.no_reverse, cache_dir=args.cache,
                                  refresh=args.refresh)
    sections = []
    if args.auto_mixed or args.compare:
        from quant import auto_mixed

        choice = auto_mixed.select(generator, calibration, context, settings=settings, cache_dir=args.cache)
        sections.append("auto-mixed choice\n\n" + "\n".join(f"- {line}" for line in auto_mixed.describe(choice)))
        if args.compare:
            sections.append(auto_mixed.format_comparison(auto_mixed.compare(
                generator, calibration, context, settings=settings, cache_dir=args.cache)))
    paths = sensitivity_report.write_report(sweep, args.out, stem, sections)
    print(paths[0].read_text())
    print("wrote " + ", ".join(map(str, paths)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quant", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every variant, and whether it can run here").set_defaults(func=cmd_list)
    b = sub.add_parser("build", help="build a variant from a generator and save it")
    b.add_argument("variant")
    b.add_argument("--model", default="default", help="'default', 'cern2017' or a weight-file path")
    b.add_argument("--calibration-n", type=positive_int, default=256, help="calibration samples")
    b.add_argument("--seed", type=seed, default=0, help="calibration seed")
    b.add_argument("--calibration-energy-range", type=energy_range,
                   help="LOW:HIGH GeV of the calibration energies (default: the model's training range)")
    b.add_argument("--out", required=True, help="folder to save the variant in (new or empty)")
    b.add_argument("--overwrite", action="store_true", help="replace a saved variant this suite wrote there")
    b.set_defaults(func=cmd_build)
    r = sub.add_parser("report", help="op report and size of a saved variant")
    r.add_argument("dir")
    r.set_defaults(func=cmd_report)
    g = sub.add_parser("generate", help="generate showers with a saved variant into an HDF5 file")
    g.add_argument("dir")
    g.add_argument("--n", type=positive_int, required=True, help="number of showers")
    g.add_argument("--out", required=True, help="shower file (.h5), written atomically")
    g.add_argument("--batch-size", type=positive_int, default=128)
    g.add_argument("--energy-range", type=energy_range, default=TRAINING_ENERGY_RANGE_GEV,
                   help="LOW:HIGH primary energy in GeV, drawn uniformly (default 10:250)")
    g.add_argument("--seed", type=seed, default=1, help="seed of the latent vectors and energies")
    g.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    g.set_defaults(func=cmd_generate)
    s = sub.add_parser("sensitivity", help="per-layer precision sweep: which layer breaks the physics (cached)")
    s.add_argument("--model", default="default", help="'default', 'cern2017' or a weight-file path")
    s.add_argument("--precision", choices=("int8", "bf16"), default="int8", help="target precision")
    s.add_argument("--runtime", default="openvino", help="runtime with per-layer control: openvino or keras")
    s.add_argument("--out", default="out/sensitivity", help="folder for the table (md, json) and the figure")
    s.add_argument("--showers", type=positive_int, default=SWEEP.showers, help="paired showers for the physics")
    s.add_argument("--bins", type=positive_int, default=SWEEP.bins, help="energy bins over the trained range")
    s.add_argument("--pairs", type=positive_int, default=SWEEP.pairs, help="timing pairs per assignment")
    s.add_argument("--speed-batch", type=positive_int, default=SWEEP.speed_batch, help="showers per timed call")
    s.add_argument("--seed", type=seed, default=SWEEP.seed, help="seed of the latent vectors and energies")
    s.add_argument("--calibration-n", type=positive_int, default=sensitivity.CALIBRATION_N,
                   help="calibration samples (as the validation suite)")
    s.add_argument("--calibration-seed", type=seed, default=sensitivity.CALIBRATION_SEED)
    s.add_argument("--folded", action="store_true",
                   help="sweep the folded generator's layers (quant.fold; the original model's tolerances)")
    s.add_argument("--batchnorm", action="store_true", help="also sweep BatchNormalization layers (keras only)")
    s.add_argument("--no-reverse", action="store_true", help="skip the reverse sweep (all reduced but one)")
    s.add_argument("--cache", help="cache folder (default $CALOGAN_CACHE/sensitivity)")
    s.add_argument("--refresh", action="store_true", help="measure again even if cached")
    s.add_argument("--overwrite", action="store_true", help="replace the table and figure in --out if present")
    s.add_argument("--auto-mixed", action="store_true", help="also choose (and verify) the auto-mixed assignment")
    s.add_argument("--compare", action="store_true",
                   help="also compare auto-mixed with int8+bf16 and INC/NNCF accuracy-driven tuning")
    s.set_defaults(func=cmd_sensitivity)
    return p


def main(argv=None) -> int:
    return run_command(parser(), argv, ERRORS)
