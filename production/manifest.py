"""``manifest.json`` of a production folder: parameters, provenance, per-shard sha256, speed, verdict.

Written atomically (temporary + rename) at the start of a run (``complete: false``), again as shards finish (at
most every :data:`SAVE_EVERY_S` seconds) and at the end. A re-run with the same parameters resumes: shard files
recorded with their sha256 are re-hashed and skipped when they match; anything else is made again (a shard is
deterministic, and written under its own name atomically, so nothing is duplicated or half-written).
"""

from __future__ import annotations

import json
from pathlib import Path

from gan.data import PRODUCTION_KIND, PRODUCTION_MANIFEST
from gan.outputs import write_json_atomic
from production.plan import Plan, ProductionError

FORMAT = 1
SAVE_EVERY_S = 2.0


def manifest_path(out) -> Path:
    return Path(out) / PRODUCTION_MANIFEST


def read(out) -> dict | None:
    """The manifest of folder ``out``, or None if it has none; ProductionError if it is not a production's."""
    path = manifest_path(out)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProductionError(f"{path}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != PRODUCTION_KIND:
        raise ProductionError(f"{path}: not a calogan production manifest")
    return manifest


def write(out, manifest: dict) -> None:
    write_json_atomic(manifest_path(out), manifest)


def check_resumable(out, plan: Plan) -> dict | None:
    """The existing manifest when ``out`` holds a production of the same parameters, None when ``out`` is absent or
    empty; ProductionError for anything else (nothing is written)."""
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ProductionError(f"--out {out}: exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return None
    manifest = read(out)
    if manifest is None:
        raise ProductionError(f"--out {out}: a folder that is not a production (no {PRODUCTION_MANIFEST}); "
                              "choose another --out")
    old, new = manifest.get("params", {}), plan.params()
    differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if differ:
        shown = "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in differ)
        raise ProductionError(f"--out {out}: holds a production with other parameters ({shown}); re-run with its "
                              "parameters to resume it, or choose another --out")
    return manifest


def verified_shards(out, manifest: dict | None) -> dict[int, dict]:
    """Shards of ``manifest`` whose files exist with the recorded sha256 (index -> entry)."""
    from gan.pretrained import sha256sum

    done = {}
    for entry in (manifest or {}).get("shards", []):
        path = Path(out) / entry["file"]
        if path.is_file() and sha256sum(path) == entry["sha256"]:
            done[int(entry["index"])] = entry
    return done


PRODUCTION_KIND = PRODUCTION_KIND  # re-exported for production.run


def params_token(plan: Plan) -> str:
    """A short digest of the parameters: Dask task keys of different productions never collide."""
    import hashlib

    from production.plan import params_json

    return hashlib.sha256(params_json(plan).encode()).hexdigest()[:12]
