"""``results.json``: every number of a study, written so that a later run can be compared with it.

Shape (``SCHEMA_VERSION`` 1)::

    {"schema": 1, "created": ISO time, "command": str, "quick": str,
     "machine": {...}, "software": {...}, "settings": {...},
     "models": {model: {"reference": {...}, "geant4_cpu_s": {...}, "fp32": {...},
                        "variants": {variant: {...}}}},
     "verdict": {model: {category: [variant, ...]}}}

Non-finite floats are stored as the strings "nan", "inf", "-inf" (plain JSON has no such numbers).
:func:`diff` lists what moved between two results: verdicts and flags that changed, numbers that moved by more
than a relative threshold, and what only one of them has.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
MOVED_REL = 0.05  # a number "moved" when it changed by more than 5% of the larger magnitude
SHOWN_MOVES = 100  # format_diff prints the largest moves first, at most this many
LIKE_FOR_LIKE = ("showers", "batch_sizes", "pairs", "speed", "seed")  # settings that make numbers comparable
# Keys left out of the diff: they change on every run and say nothing about the study, or they are text
# renderings of numbers that are compared anyway (verdict tables and failure lines; the "ok" flags stay).
VOLATILE = ("created", "command", "elapsed_s", "build_s", "generate_s", "table", "failures")
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class ResultsError(ValueError):
    """A results.json that cannot be read or has the wrong schema; the message names the file."""


def to_jsonable(value):
    """``value`` with numpy scalars/arrays turned into Python, non-finite floats into strings, keys into str."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def number(value) -> float | None:
    """A stored number back as a float ("nan"/"inf" strings included); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return _NON_FINITE.get(value) if isinstance(value, str) else None


def write(results: dict, path) -> Path:
    """Write ``results`` as JSON atomically (temporary file, then rename)."""
    from gan.outputs import write_json_atomic

    return write_json_atomic(path, to_jsonable(results), allow_nan=False)


def read(path) -> dict:
    """A results.json (or the folder holding one), checked for the schema version."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ResultsError(f"{path}: not a study results file of schema {SCHEMA_VERSION} (schema: {found!r})")
    return data


# ------------------------------------------------------------------ comparing two results


def flatten(data, prefix: str = "") -> dict[str, object]:
    """'a/b/c' -> leaf value for every leaf of nested dicts (lists of scalars kept whole, volatile keys out)."""
    out = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if key not in VOLATILE:
                out |= flatten(value, f"{prefix}{key}/")
    elif isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        for i, value in enumerate(data):
            out |= flatten(value, f"{prefix}{i}/")
    else:
        out[prefix.rstrip("/")] = data
    return out


def relative_change(old: float, new: float) -> float:
    """|new - old| / max(|old|, |new|): 0 for equal values, 1 for a sign flip or a change from 0."""
    if old == new or (math.isnan(old) and math.isnan(new)):
        return 0.0
    if not (math.isfinite(old) and math.isfinite(new)):
        return math.inf
    return abs(new - old) / max(abs(old), abs(new))


def _format_number(x: float) -> str:
    return f"{x:.4g}"


def _moved_line(key: str, old, new, threshold: float) -> str | None:
    a, b = number(old), number(new)
    if a is not None and b is not None:
        if relative_change(a, b) <= threshold:
            return None
        pct = f" ({100 * (b - a) / abs(a):+.0f}%)" if a and math.isfinite(a) and math.isfinite(b) else ""
        return f"{key}: {_format_number(a)} -> {_format_number(b)}{pct}"
    if old != new:
        return f"{key}: {old!r} -> {new!r}"
    return None


def _collapse(keys, depth: int = 4) -> list[str]:
    """Keys cut to their first ``depth`` parts, deduplicated (a missing variant is one line, not hundreds)."""
    return sorted({"/".join(k.split("/")[:depth]) for k in keys})


def diff(old: dict, new: dict, threshold: float = MOVED_REL) -> dict[str, list[str]]:
    """What moved from ``old`` to ``new``: {"changed": [...], "moved": [...], "only_old": [...], "only_new": [...]}.

    "changed": verdicts, flags and other non-numbers; "moved": numbers changed by more than ``threshold``
    (relative); "only_*": keys (cut to model/variant depth) that only one of the two results has.
    """
    a, b = flatten(old), flatten(new)
    changed, moved = [], []
    for key in sorted(set(a) & set(b)):
        line = _moved_line(key, a[key], b[key], threshold)
        if line is None:
            continue
        x, y = number(a[key]), number(b[key])
        if x is not None and y is not None:
            moved.append((relative_change(x, y), line))
        else:
            changed.append(line)
    old_settings, new_settings = old.get("settings", {}), new.get("settings", {})
    unlike = [f"settings differ: {k} {old_settings.get(k)!r} -> {new_settings.get(k)!r} (numbers not like for like)"
              for k in LIKE_FOR_LIKE if old_settings.get(k) != new_settings.get(k)]
    return {"warnings": unlike, "changed": changed,
            "moved": [line for _, line in sorted(moved, key=lambda m: -m[0])],
            "only_old": _collapse(set(a) - set(b)), "only_new": _collapse(set(b) - set(a))}


def format_diff(moves: dict[str, list[str]], old_name: str = "old", new_name: str = "new",
                threshold: float = MOVED_REL) -> str:
    """The diff as text, most important first (verdict changes, then numbers)."""
    moved = moves["moved"][:SHOWN_MOVES]
    if len(moves["moved"]) > SHOWN_MOVES:
        moved.append(f"... and {len(moves['moved']) - SHOWN_MOVES} smaller moves")
    sections = [("warning", moves.get("warnings", [])), ("verdicts and flags that changed", moves["changed"]),
                (f"numbers that moved by more than {100 * threshold:g}%, largest first", moved),
                (f"only in {old_name}", moves["only_old"]), (f"only in {new_name}", moves["only_new"])]
    lines = [f"compared {old_name} -> {new_name}"]
    for title, items in sections:
        if items:
            lines += ["", f"{title} ({len(items)}):"] + [f"  {item}" for item in items]
    if len(lines) == 1:
        lines.append(f"nothing moved by more than {100 * threshold:g}%")
    return "\n".join(lines)
