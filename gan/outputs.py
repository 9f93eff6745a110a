"""Where the suite writes: temporary names beside the target, stale temporaries cleaned, and the overwrite guard.

Every writer writes to a hidden temporary beside its target and renames it at the end, so a killed run leaves the
old output intact. The temporary's name holds the writer's process id (``.<name>.<pid>-<random>.tmp``): the next
writer of the same target removes those whose process is gone (:func:`clean_stale`).

A folder the suite writes (a report, a saved variant) carries :data:`MARKER`, listing the files it wrote;
``--overwrite`` replaces such a folder only while it holds nothing else (:func:`check_replaceable`), and an
existing file only when the user asked for it (:func:`check_new_file`). Problems raise :class:`OutputError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

MARKER = ".calogan-output.json"
LEGACY_AGE_S = 24 * 3600  # temporaries of older versions (no process id in the name): stale after a day


class OutputError(ValueError):
    """An output that must not be written or replaced; the message names the path and the reason."""


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def temp_name(target) -> Path:
    """A new temporary path beside ``target``: ``.<name>.<pid>-<random>.tmp``."""
    target = Path(target)
    return target.with_name(f"{_temp_prefix(target)}{os.getpid()}-{secrets.token_hex(4)}.tmp")


def temp_dir(target) -> Path:
    """A new empty temporary folder beside ``target`` (created)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(target)}{os.getpid()}-", suffix=".tmp", dir=target.parent))


@contextlib.contextmanager
def atomic_path(target, mode: int | None = None):
    """Yield a temporary path beside ``target`` to write; on success it is renamed onto ``target``, on any error
    (or SIGKILL: :func:`clean_stale`) it is removed and ``target`` stays as it was. ``mode``: chmod before the rename
    (default: a new file's permissions under the umask).

    The one temporary-and-rename writer of the project; text and JSON through :func:`write_text_atomic` and
    :func:`write_json_atomic`, files written by libraries (HDF5, PNG, npz) by writing to the yielded path.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = temp_name(target)
    try:
        yield tmp
        if mode is not None:
            Path(tmp).chmod(mode)
        Path(tmp).replace(target)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_path` (never half-written); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path, data, **dump_options) -> Path:
    """Write ``data`` as JSON (``json.dumps`` options, default ``indent=1``) plus a newline, atomically."""
    return write_text_atomic(path, json.dumps(data, **({"indent": 1} | dump_options)) + "\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _is_stale(path: Path, prefix: str, now: float) -> bool:
    middle = path.name[len(prefix):-len(".tmp")]
    pid = middle.split("-", 1)[0]
    if pid.isdigit() and "-" in middle:
        return not _alive(int(pid))
    try:
        return now - path.lstat().st_mtime > LEGACY_AGE_S  # an older version's temporary
    except FileNotFoundError:
        return False


def clean_stale(target) -> list[Path]:
    """Remove the temporaries of ``target`` left by writers that were killed; returns what was removed."""
    target = Path(target)
    prefix, removed, now = _temp_prefix(target), [], time.time()
    if not target.parent.is_dir():
        return removed
    for path in target.parent.glob(f"{prefix}*.tmp"):
        if _is_stale(path, prefix, now):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def check_new_file(path, overwrite: bool) -> None:
    """Refuse an existing ``path`` unless ``overwrite``; never replace a folder with a file."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; choose another name or pass --overwrite to replace it")


def write_marker(folder, kind: str) -> Path:
    """Record in ``folder`` that the suite made it and which files it holds (call when it is complete)."""
    folder = Path(folder)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != MARKER)
    marker = folder / MARKER
    marker.write_text(json.dumps({"kind": kind, "files": files}, indent=1))
    return marker


def read_marker(folder) -> dict | None:
    """The marker of ``folder`` ({'kind', 'files'}), or None if it has none (or an unreadable one)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(marker, dict) and isinstance(marker.get("files"), list) and isinstance(marker.get("kind"), str)
    return marker if ok else None


def foreign_files(folder, known) -> list[str]:
    """Paths below ``folder`` (relative) that are not in ``known`` (nor the marker): what the suite did not write."""
    folder, known = Path(folder), set(known) | {MARKER}
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if str(p.relative_to(folder)) not in known)


def check_replaceable(folder, kind: str, overwrite: bool, legacy=None) -> None:
    """Refuse to write to ``folder`` unless it is absent, empty, or (with ``overwrite``) one the suite made.

    A suite-made folder has a marker of ``kind`` and nothing the marker does not list. ``legacy(folder)`` may
    return the files an older version would have written (a folder made before the marker existed), or None.
    """
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputError(f"{folder}: exists and is not a folder")
    if not folder.exists() or not any(folder.iterdir()):
        return
    if not overwrite:
        raise OutputError(f"{folder}: already holds a {kind} (or other files); choose another --out or pass "
                          f"--overwrite to replace a {kind} this suite wrote")
    marker = read_marker(folder)
    if marker is not None and marker["kind"] != kind:
        raise OutputError(f"{folder}: holds a {marker['kind']}, not a {kind}; --overwrite refuses to replace it")
    known = marker["files"] if marker is not None else (legacy(folder) if legacy else None)
    if known is None:
        raise OutputError(f"{folder}: not a {kind} written by this suite (no {MARKER}); --overwrite replaces only "
                          "those: choose another --out")
    foreign = foreign_files(folder, known)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(f"{folder}: holds files this suite did not write ({shown}); --overwrite refuses to delete "
                          "them: move them or choose another --out")


def publish_dir(tmp, out) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing what :func:`check_replaceable` allowed."""
    tmp, out = Path(tmp), Path(out)
    if not out.exists():
        tmp.replace(out)
        return
    old = temp_name(out)
    out.replace(old)
    try:
        tmp.replace(out)
    except BaseException:
        Path(old).replace(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
