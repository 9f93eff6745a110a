"""Speed-up floors (the CI gate) and targets, from ``benchmarks/speedup_floors.toml``; proposes new floors.

A floor applies to one (model, variant, batch) where it was measured: same thread count, the CPU flags it lists,
the package versions it lists. The gate fails a test when the *upper* end of the speed-up's 95 % bootstrap
interval is below the floor: only a run that shows the ratio is below the floor fails (the floor's noise margin
covers machine-to-machine drift, the interval this run's own noise).

    python -m benchmarks.floors                       # the floors and targets, and whether each applies here
    python -m benchmarks.floors --measure             # measure here (~3 min on 2 cores), print proposed floors
    python -m benchmarks.floors --from-json .benchmarks/speedups.json --margin 0.3
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

FLOORS_FILE = Path(__file__).with_name("speedup_floors.toml")
DEFAULT_MARGIN = 0.3
BEST_INT8 = "best-int8"  # target name for the fastest variant with int8 ops and no known physics failure here
# packages (import names) whose versions scope a proposed floor, by the module that builds the variant (prefix);
# tensorflow always (the FP32 reference runs on it)
RUNTIME_PACKAGES = {"quant.openvino": ("openvino", "nncf"), "quant.auto_mixed": ("openvino", "nncf"),
                    "quant.inc": ("neural_compressor", "intel_extension_for_tensorflow"),
                    "quant.tflite": ("ai_edge_litert",)}
_FLOOR_FIELDS = {"model", "variant", "batch", "threads", "floor", "measured", "cpu_flags", "packages"}
_TARGET_FIELDS = {"variant", "batch", "threads", "speedup", "source", "cpu_flags", "packages"}


@dataclass(frozen=True)
class Scope:
    """Where a number was measured: threads, CPU flags (all required), package version specifiers."""

    threads: int
    cpu_flags: tuple[str, ...] = ()
    packages: dict[str, str] = field(default_factory=dict)

    def mismatch(self, threads: int, cpu_flags, version_of) -> str | None:
        """Why this scope does not hold here (None: it does). ``version_of(import_name)`` -> version or None."""
        if threads != self.threads:
            return f"measured with {self.threads} threads, here {threads}"
        missing = sorted(set(self.cpu_flags) - set(cpu_flags))
        if missing:
            return f"needs CPU flag {', '.join(missing)}"
        for package, spec in self.packages.items():
            installed = version_of(package)
            if installed is None or not SpecifierSet(spec).contains(Version(installed), prereleases=True):
                return f"measured with {package}{spec}, here {installed or 'not installed'}"
        return None


@dataclass(frozen=True)
class Floor:
    model: str
    variant: str
    batch: int
    floor: float
    scope: Scope
    measured: str = ""


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

    def floor_for(self, model: str, variant: str, batch: int) -> Floor | None:
        return next((f for f in self.floors if (f.model, f.variant, f.batch) == (model, variant, batch)), None)

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


def _scope(raw: dict) -> Scope:
    return Scope(int(raw["threads"]), tuple(raw.get("cpu_flags", ())), dict(raw.get("packages", {})))


def parse(text: str, name: str = "speedup floors") -> FloorTable:
    data = tomllib.loads(text)
    floors, targets = [], []
    for i, raw in enumerate(data.get("floor", [])):
        where = f"{name}: floor #{i + 1}"
        _check_fields(raw, _FLOOR_FIELDS, {"model", "variant", "batch", "threads", "floor"}, where)
        if not raw["floor"] > 0:
            raise ValueError(f"{where}: floor must be > 0, got {raw['floor']}")
        floors.append(Floor(raw["model"], raw["variant"], int(raw["batch"]), float(raw["floor"]), _scope(raw),
                            raw.get("measured", "")))
    keys = [(f.model, f.variant, f.batch) for f in floors]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"{name}: more than one floor for {duplicates}")
    for i, raw in enumerate(data.get("target", [])):
        _check_fields(raw, _TARGET_FIELDS, {"variant", "batch", "threads", "speedup"}, f"{name}: target #{i + 1}")
        targets.append(Target(raw["variant"], int(raw["batch"]), float(raw["speedup"]), _scope(raw),
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
    """The floor of (model, variant, batch): value, whether it applies here (reason if not) and the verdict."""
    floor = table.floor_for(model, variant, batch)
    if floor is None:
        return None
    why = floor.scope.mismatch(threads, cpu_flags, version_of)
    verdict = gate_verdict(floor.floor, speedup["high"]) if why is None and speedup else None
    return {"floor": floor.floor, "reason": why, "verdict": verdict, "measured": floor.measured}


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
    """tensorflow plus the runtime packages of the module that builds ``variant``."""
    from quant import registry

    module = registry.get(variant).build.__module__
    return ("tensorflow",) + next((p for prefix, p in RUNTIME_PACKAGES.items() if module.startswith(prefix)), ())


def minor_specifier(version: str) -> str:
    """'2.21.0' -> '==2.21.*'."""
    release = Version(version).release
    return f"=={release[0]}.{release[1] if len(release) > 1 else 0}.*"


def propose(rows: list[dict], margin: float, cpu_flags, versions: dict, where: str) -> str:
    """TOML ``[[floor]]`` entries for the measured speed-ups in ``rows`` (as in the benchmarks' speedups.json)."""
    out = []
    for row in rows:
        speedup = row.get("speedup")
        if not speedup:
            continue
        floor = proposed_floor(speedup["median"], margin)
        if floor <= 0:
            continue
        packages = {p: minor_specifier(versions[p]) for p in scope_packages(row["variant"]) if versions.get(p)}
        out += ["[[floor]]", f'model = "{row["model"]}"', f'variant = "{row["variant"]}"', f"batch = {row['batch']}",
                f"threads = {row['threads']}", f"floor = {floor}",
                f'measured = "{speedup["median"]:.2f}x [{speedup["low"]:.2f}, {speedup["high"]:.2f}], '
                f'{date.today().isoformat()}, {where}; floor = median x (1 - {margin})"',
                f"cpu_flags = {json.dumps(sorted(cpu_flags))}",
                "packages = { " + ", ".join(f'{p} = "{s}"' for p, s in packages.items()) + " }", ""]
    return "\n".join(out)


def _describe(table: FloorTable, threads: int, cpu_flags, version_of) -> str:
    lines = []
    for f in table.floors:
        why = f.scope.mismatch(threads, cpu_flags, version_of)
        lines.append(f"floor  {f.model}-{f.variant} b{f.batch}: {f.floor:g}x  "
                     f"{'applies here' if why is None else 'not here: ' + why}")
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
    parser.add_argument("--margin", type=float, default=None,
                        help="relative noise margin: floor = median x (1 - margin) (default: the file's noise_margin)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments for --measure (after --)")
    args = parser.parse_args(argv)

    from benchmarks import machine
    from quant.cpu import cpu_flags

    table = load()
    if not (args.measure or args.from_json):
        print(_describe(table, machine.requested_threads(), cpu_flags(), machine.package_versions().get))
        return 0
    try:
        payload = _measure(args.pytest_args) if args.measure else json.loads(args.from_json.read_text())
        rows, measured_on = payload["rows"], payload["machine"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"{args.from_json or 'the run'}: not a benchmarks speedups.json ({exc})") from None
    margin = table.noise_margin if args.margin is None else args.margin
    print(f"# proposed floors (paste into {FLOORS_FILE.name}; review the diff):\n")
    print(propose(rows, margin, measured_on["isa"]["flags"], measured_on["packages"], measured_on["cpu_model"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
