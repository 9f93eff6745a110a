"""The end-of-session table of showers/s and speed-ups per variant, and its JSON twin (for the report).

A row is a plain dict (JSON as it is), made by benchmarks/test_speedup.py: model, variant, batch, threads,
showers_per_s, seconds_per_batch (pytest-benchmark's rounds), speedup (the interleaved measurement as the report
stores it per batch size, study.results.SpeedResult.to_dict(): median, low, high, pairs, reference_s, variant_s,
showers_per_s and fp32_showers_per_s in those pairs; None for the reference), geant4
(per energy bin), op_summary, int8_ops, physics, floor ({floor, verdict, reason}), target ({speedup, met, reason});
with --benchmark-compare also last_run ({speedup, showers_per_s} of the compared run, where it had this test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def _speedup(row: dict) -> str:
    s = row.get("speedup")
    return "1 (reference)" if s is None else f"{s['median']:.2f}x [{s['low']:.2f}, {s['high']:.2f}]"


def _geant4(row: dict) -> str:
    values = [b["speedup"] for b in row.get("geant4") or () if b.get("speedup")]
    return f"{min(values):.3g}-{max(values):.3g}x" if values else "-"


def _floor(row: dict) -> str:
    f = row.get("floor")
    if not f:
        return "-"
    return f"{f['floor']:g}x {f['verdict']}" if f.get("verdict") else f"{f['floor']:g}x n/a"


def _target(row: dict) -> str:
    t = row.get("target")
    if not t:
        return "-"
    status = "n/a" if t.get("met") is None else "met" if t["met"] else "missed"
    return f">={t['speedup']:g}x {status}"


COLUMNS = (
    ("model", lambda r: r["model"]),
    ("variant", lambda r: r["variant"]),
    ("batch", lambda r: str(r["batch"])),
    ("showers/s", lambda r: f"{r['showers_per_s']:.1f}"),
    ("ms/batch", lambda r: f"{1e3 * r['seconds_per_batch']:.1f}"),
    ("speed-up vs fp32 [95%]", _speedup),
    ("vs Geant4/core", _geant4),
    ("ops", lambda r: r.get("op_summary") or "-"),
    ("physics", lambda r: r.get("physics") or "-"),
    ("floor", _floor),
    ("target", _target),
)


def _last_run(row: dict) -> str:
    last = row.get("last_run")
    if not last:
        return "-"
    return "1 (reference)" if last.get("speedup") is None else f"{last['speedup']['median']:.2f}x"


LAST_RUN_COLUMN = ("last run", _last_run)  # shown when a row has "last_run" (--benchmark-compare)


def format_table(rows: list[dict]) -> str:
    """Fixed-width text table, one line per measured (model, variant, batch)."""
    columns = list(COLUMNS)
    if any("last_run" in r for r in rows):
        columns.insert(6, LAST_RUN_COLUMN)
    cells = [[name for name, _ in columns]] + [[get(r) for _, get in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells]
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:])


def best_int8(rows: list[dict], batch: int) -> dict | None:
    """The fastest row at ``batch`` whose variant runs int8 ops and is not a known physics failure here."""
    candidates = [r for r in rows if r["batch"] == batch and r.get("int8_ops") and r.get("speedup")
                  and r.get("physics") != "known failure"]
    return max(candidates, key=lambda r: r["speedup"]["median"], default=None)


def write_json(path, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically (a temporary file renamed on success)."""
    from gan.outputs import write_json_atomic

    return write_json_atomic(path, payload, sort_keys=True)
