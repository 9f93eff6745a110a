"""Speed-up floors (the CI gate) and targets, from ``benchmarks/speedup_floors.toml``; proposes new floors.

A floor applies to one (model, variant, batch) on one CPU class (``gan.machine.CPU_CLASSES``: AMX, AVX-512 with
bf16, AVX-512, AVX2) and thread count, with the CPU flags and package versions it lists (``gan.machine.Scope``: the
rule known physics failures use too); ``cpu_class = "any"`` and ``threads = "any"`` make a conservative floor that
applies everywhere (e.g. an exact rewrite must not be slower than FP32 by more than the noise margin). Where several
apply, the most specific one gates. Every floor says which CPU it came from (``cpu``). The gate fails a test when
the *upper* end of the speed-up's 95 % bootstrap interval is below the floor: only a run that shows the ratio is
below the floor fails (the floor's noise margin covers machine-to-machine drift, the interval this run's own noise).

    python -m benchmarks.floors                       # the floors and targets, and whether each applies here
    python -m benchmarks.floors --measure             # measure here (~3 min on 2 cores), print proposed floors
    python -m benchmarks.floors --measure --write     # ... and write them as this CPU class's and thread count's
    python -m benchmarks.floors --from-json .benchmarks/speedups.json --margin 0.3
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from gan.machine import CPU_CLASSES, NO_CLASS, Scope, cpu_class

FLOORS_FILE = Path(__file__).with_name("speedup_floors.toml")
DEFAULT_MARGIN = 0.3
BEST_INT8 = "best-int8"  # target name for the fastest variant with int8 ops and no known physics failure here
_FLOOR_FIELDS = {"model", "variant", "batch", "threads", "floor", "measured", "cpu_flags", "packages", "cpu_class",
                 "cpu"}
_TARGET_FIELDS = {"variant", "batch", "threads", "speedup", "source", "cpu_flags", "packages"}
ANY = "any"


@dataclass(frozen=True)
class Floor:
    model: str
    variant: str
    batch: int
    floor: float
    scope: Scope
    measured: str = ""
    cpu: str = ""  # the CPU it was measured on, or why it holds without a measurement

    def key(self) -> tuple:
        return self.model, self.variant, self.batch, self.scope.cpu_class, self.scope.threads


@dataclass(frozen=True)
class Target:
    variant: str
    batch: int
    speedup: float
    scope: Scope
    source: str = ""


@dataclass(frozen=True)
class FloorTable:
    floors: tuple[Floor, ...]
    targets: tuple[Target, ...]
    noise_margin: float

    def floors_for(self, model: str, variant: str, batch: int) -> list[Floor]:
        """Every floor of (model, variant, batch), the most specific scope first."""
        found = [f for f in self.floors if (f.model, f.variant, f.batch) == (model, variant, batch)]
        return sorted(found, key=lambda f: -f.scope.specificity())

    def floor_for(self, model: str, variant: str, batch: int, threads: int | None = None, cpu_flags=(),
                  version_of=None) -> Floor | None:
        """The floor that gates (model, variant, batch) here (the most specific that applies), or None; without
        ``threads``: the most specific one, wherever it applies."""
        found = self.floors_for(model, variant, batch)
        if threads is None:
            return found[0] if found else None
        version_of = version_of or (lambda _: None)
        return next((f for f in found if f.scope.mismatch(threads, cpu_flags, version_of) is None), None)

    def keys(self) -> list[tuple[str, str, int]]:
        """(model, variant, batch) of every floor, in file order, once."""
        return list(dict.fromkeys((f.model, f.variant, f.batch) for f in self.floors))

    def applicable(self, threads: int, cpu_flags, version_of) -> list[Floor]:
        """The floors that gate here, one per (model, variant, batch)."""
        found = (self.floor_for(*key, threads, cpu_flags, version_of) for key in self.keys())
        return [f for f in found if f is not None]

    def target_for(self, variant: str, batch: int) -> Target | None:
        return next((t for t in self.targets if (t.variant, t.batch) == (variant, batch)), None)


def _check_fields(raw: dict, allowed: set, required: set, where: str) -> None:
    unknown, missing = set(raw) - allowed, required - set(raw)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)} (allowed: {sorted(allowed)})")
    if missing:
        raise ValueError(f"{where}: missing {sorted(missing)}")
    for spec in raw.get("packages", {}).values():
        try:
            SpecifierSet(spec)
        except InvalidSpecifier:
            raise ValueError(f"{where}: bad version specifier '{spec}'") from None


def _scope(raw: dict, where: str) -> Scope:
    threads, klass = raw["threads"], raw.get("cpu_class", ANY)
    if threads != ANY and not (isinstance(threads, int) and threads >= 1):
        raise ValueError(f"{where}: threads must be a positive integer or \"{ANY}\", got {threads!r}")
    if klass != ANY and klass not in (*CPU_CLASSES, NO_CLASS):
        raise ValueError(f"{where}: unknown cpu_class {klass!r} (known: {', '.join(CPU_CLASSES)}, {NO_CLASS}, {ANY})")
    return Scope(None if threads == ANY else threads, tuple(raw.get("cpu_flags", ())), dict(raw.get("packages", {})),
                 None if klass == ANY else klass)


def parse(text: str, name: str = "speedup floors") -> FloorTable:
    data = tomllib.loads(text)
    floors, targets = [], []
    for i, raw in enumerate(data.get("floor", [])):
        where = f"{name}: floor #{i + 1}"
        _check_fields(raw, _FLOOR_FIELDS, {"model", "variant", "batch", "threads", "floor", "cpu"}, where)
        if not raw["floor"] > 0:
            raise ValueError(f"{where}: floor must be > 0, got {raw['floor']}")
        floors.append(Floor(raw["model"], raw["variant"], int(raw["batch"]), float(raw["floor"]),
                            _scope(raw, where), raw.get("measured", ""), raw["cpu"]))
    keys = [f.key() for f in floors]
    duplicates = sorted({k[:3] for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"{name}: more than one floor with the same CPU class and threads for {duplicates}")
    for i, raw in enumerate(data.get("target", [])):
        where = f"{name}: target #{i + 1}"
        _check_fields(raw, _TARGET_FIELDS, {"variant", "batch", "threads", "speedup"}, where)
        targets.append(Target(raw["variant"], int(raw["batch"]), float(raw["speedup"]), _scope(raw, where),
                              raw.get("source", "")))
    return FloorTable(tuple(floors), tuple(targets), float(data.get("noise_margin", DEFAULT_MARGIN)))


def load(path=FLOORS_FILE) -> FloorTable:
    path = Path(path)
    try:
        return parse(path.read_text(), str(path))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None


def gate_verdict(floor: float, speedup_high: float) -> str:
    """'FAIL' when even the upper end of the speed-up interval is below the floor, else 'PASS'."""
    return "FAIL" if speedup_high < floor else "PASS"


def floor_status(table: FloorTable, model: str, variant: str, batch: int, speedup: dict | None, threads: int,
                 cpu_flags, version_of) -> dict | None:
    """The floor of (model, variant, batch) that gates here (else the most specific one, with the reason it does
    not apply): value, reason, the verdict, and where it came from."""
    floor = table.floor_for(model, variant, batch, threads, cpu_flags, version_of)
    why = None
    if floor is None:
        floor = table.floor_for(model, variant, batch)
        if floor is None:
            return None
        why = floor.scope.mismatch(threads, cpu_flags, version_of)
    verdict = gate_verdict(floor.floor, speedup["high"]) if why is None and speedup else None
    return {"floor": floor.floor, "reason": why, "verdict": verdict, "measured": floor.measured, "cpu": floor.cpu}


def target_status(table: FloorTable, variant: str, batch: int, speedup: dict | None, threads: int, cpu_flags,
                  version_of) -> dict | None:
    """The target of (variant, batch): whether it applies here and whether the median speed-up meets it."""
    target = table.target_for(variant, batch)
    if target is None:
        return None
    why = target.scope.mismatch(threads, cpu_flags, version_of)
    met = speedup["median"] >= target.speedup if why is None and speedup else None
    return {"speedup": target.speedup, "reason": why, "met": met, "source": target.source}


def proposed_floor(median: float, margin: float) -> float:
    """The measured median minus the relative noise margin, rounded down to 0.05."""
    if not 0 <= margin < 1:
        raise ValueError(f"noise margin must be in [0, 1), got {margin}")
    return math.floor(round(median * (1 - margin) * 20, 6)) / 20  # round(): 3.0 x 0.7 is 2.0999...


def scope_packages(variant: str) -> tuple[str, ...]:
    """tensorflow (the FP32 reference runs on it) plus the runtime packages of ``variant``'s family."""
    from quant import registry

    return tuple(dict.fromkeys(("tensorflow", *registry.packages(variant))))


def minor_specifier(version: str) -> str:
    """'2.21.0' -> '==2.21.*'."""
    release = Version(version).release
    return f"=={release[0]}.{release[1] if len(release) > 1 else 0}.*"


def propose(rows: list[dict], margin: float, cpu_flags, versions: dict, where: str, note: str = "") -> str:
    """TOML ``[[floor]]`` entries for the measured speed-ups in ``rows`` (as in the benchmarks' speedups.json),
    scoped to the CPU class of ``cpu_flags`` and the rows' thread count; ``where``: the CPU model."""
    out, klass = [], cpu_class(cpu_flags)
    for row in rows:
        speedup = row.get("speedup")
        if not speedup:
            continue
        floor = proposed_floor(speedup["median"], margin)
        if floor <= 0:
            continue
        packages = {p: minor_specifier(versions[p]) for p in scope_packages(row["variant"]) if versions.get(p)}
        out += ["[[floor]]", f'model = "{row["model"]}"', f'variant = "{row["variant"]}"', f"batch = {row['batch']}",
                f"threads = {row['threads']}", f'cpu_class = "{klass}"', f"cpu = {json.dumps(where)}",
                f"floor = {floor}",
                f'measured = "{speedup["median"]:.2f}x [{speedup["low"]:.2f}, {speedup["high"]:.2f}], '
                f'{date.today().isoformat()}; floor = median x (1 - {margin}){"; " + note if note else ""}"',
                f"cpu_flags = {json.dumps(sorted(cpu_flags))}",
                "packages = { " + ", ".join(f'{p} = "{s}"' for p, s in packages.items()) + " }", ""]
    return "\n".join(out)


def block_marks(klass: str, threads: int) -> tuple[str, str]:
    """The comment lines around the floors ``--write`` measured for one CPU class and thread count."""
    what = f"measured floors: cpu_class {klass}, {threads} threads"
    return (f"# >>> {what} (written by python -m benchmarks.floors --measure --write) >>>",
            f"# <<< {what} <<<")


def replace_block(text: str, klass: str, threads: int, block: str) -> str:
    """``text`` with the floors block of (``klass``, ``threads``) replaced by ``block`` (appended if absent)."""
    start, end = block_marks(klass, threads)
    new = f"{start}\n\n{block.strip()}\n\n{end}\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: new, text, count=1)
    return text.rstrip("\n") + "\n\n" + new


def write_floors(path: Path, text: str) -> None:
    """Check ``text`` parses as a floors file, then write it atomically."""
    from gan.outputs import write_text_atomic

    parse(text, str(path))
    write_text_atomic(path, text)


def _describe(table: FloorTable, threads: int, cpu_flags, version_of) -> str:
    lines = [f"this machine: cpu_class {cpu_class(cpu_flags)}, {threads} threads"]
    gating = set(map(id, table.applicable(threads, cpu_flags, version_of)))
    for f in table.floors:
        why = f.scope.mismatch(threads, cpu_flags, version_of)
        state = ("gates here" if id(f) in gating else "applies, but a more specific floor gates") if why is None \
            else "not here: " + why
        lines.append(f"floor  {f.model}-{f.variant} b{f.batch} [{f.scope.cpu_class or ANY}, "
                     f"{f.scope.threads or ANY} threads]: {f.floor:g}x ({f.cpu})  {state}")
    for t in table.targets:
        why = t.scope.mismatch(threads, cpu_flags, version_of)
        lines.append(f"target {t.variant} b{t.batch}: >= {t.speedup:g}x  {'applies here' if why is None else why}")
    return "\n".join(lines)


def _measure(extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="floors.") as tmp:
        out = Path(tmp) / "speedups.json"
        command = [sys.executable, "-m", "pytest", "benchmarks", "--models", "default", "--batch-sizes", "128",
                   "--gate-timing", "--speedups-json", str(out), "-q", *extra]
        print("running:", " ".join(command), flush=True)
        subprocess.run(command, check=False)
        if not out.is_file():
            raise SystemExit("the benchmark run wrote no speed-ups: see its output above")
        return json.loads(out.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floors", description=__doc__.split("\n\n")[0])
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--measure", action="store_true", help="run the benchmarks here (default model, batch 128, "
                     "gate timing) and print proposed floors")
    how.add_argument("--from-json", type=Path, help="propose floors from a speedups.json of an earlier run")
    parser.add_argument("--write", action="store_true", help="with --measure or --from-json: write the floors "
                        "into the floors file as those of this CPU class and thread count (replacing earlier ones)")
    parser.add_argument("--note", default="", help="appended to each floor's 'measured' text (e.g. 'quiet machine')")
    parser.add_argument("--margin", type=float, default=None,
                        help="relative noise margin: floor = median x (1 - margin) (default: the file's noise_margin)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments for --measure (after --)")
    args = parser.parse_args(argv)

    from gan.machine import cpu_flags, package_version, requested_threads

    table = load()
    if not (args.measure or args.from_json):
        print(_describe(table, requested_threads(), cpu_flags(), package_version))
        return 0
    try:
        payload = _measure(args.pytest_args) if args.measure else json.loads(args.from_json.read_text())
        rows, measured_on = payload["rows"], payload["machine"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"{args.from_json or 'the run'}: not a benchmarks speedups.json ({exc})") from None
    margin = table.noise_margin if args.margin is None else args.margin
    flags = measured_on["isa"]["flags"]
    note = json.dumps(args.note)[1:-1]  # escaped for the TOML string
    proposed = propose(rows, margin, flags, measured_on["packages"], measured_on["cpu_model"], note)
    if not args.write:
        print(f"# proposed floors (paste into {FLOORS_FILE.name}, or rerun with --write; review the diff):\n")
        print(proposed)
        return 0
    threads = {row["threads"] for row in rows}
    if not proposed or len(threads) != 1:
        raise SystemExit("nothing to write: the run measured no speed-up (or mixed thread counts)")
    write_floors(FLOORS_FILE, replace_block(FLOORS_FILE.read_text(), cpu_class(flags), threads.pop(), proposed))
    print(proposed)
    print(f"# written to {FLOORS_FILE} (cpu_class {cpu_class(flags)}); review with git diff")
    return 0


if __name__ == "__main__":
    sys.exit(main())
