"""gan.outputs: the overwrite guard never touches what the suite did not write; killed writers' temporaries go."""

import os
import subprocess
import sys
import time

import pytest

from gan import outputs
from gan.outputs import MARKER, OutputError


def _thesis(folder):
    """A user's folder: what issue #14 saw wiped by --overwrite."""
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    (folder / "sub" / "data.csv").write_text("1,2,3")
    return folder


def _ours(folder, kind="report"):
    folder.mkdir()
    (folder / "report.md").write_text("old")
    outputs.write_marker(folder, kind)
    return folder


def test_absent_or_empty_folders_are_fine(tmp_path):
    outputs.check_replaceable(tmp_path / "new", "report", overwrite=False)
    (tmp_path / "empty").mkdir()
    outputs.check_replaceable(tmp_path / "empty", "report", overwrite=False)


@pytest.mark.parametrize(("overwrite", "message"), [
    (False, "pass --overwrite"),
    (True, "not a report written by this suite"),
])
def test_a_users_folder_is_never_replaced(tmp_path, overwrite, message):
    folder = _thesis(tmp_path / "mine")
    with pytest.raises(OutputError, match=message):
        outputs.check_replaceable(folder, "report", overwrite)
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_our_folder_is_replaced_only_while_it_holds_nothing_else(tmp_path):
    folder = _ours(tmp_path / "r")
    outputs.check_replaceable(folder, "report", overwrite=True)
    (folder / "notes.txt").write_text("the user's")
    with pytest.raises(OutputError, match=r"holds files this suite did not write \(notes.txt\)"):
        outputs.check_replaceable(folder, "report", overwrite=True)


def test_a_folder_of_another_kind_is_refused(tmp_path):
    folder = _ours(tmp_path / "v", kind="saved variant")
    with pytest.raises(OutputError, match="holds a saved variant, not a report"):
        outputs.check_replaceable(folder, "report", overwrite=True)


def test_a_forged_or_broken_marker_does_not_count(tmp_path):
    folder = _thesis(tmp_path / "mine")
    (folder / MARKER).write_text("[]")
    with pytest.raises(OutputError, match="not a report written by this suite"):
        outputs.check_replaceable(folder, "report", overwrite=True)


def test_files_and_symlinks_are_not_folders(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "link").symlink_to(_ours(tmp_path / "r"))
    for path in (tmp_path / "f", tmp_path / "link"):
        with pytest.raises(OutputError, match="exists and is not a folder"):
            outputs.check_replaceable(path, "report", overwrite=True)


def test_publish_replaces_our_folder(tmp_path):
    out, new = _ours(tmp_path / "r"), outputs.temp_dir(tmp_path / "r")
    (new / "report.md").write_text("new")
    outputs.publish_dir(new, out)
    assert (out / "report.md").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_existing_files_need_overwrite(tmp_path):
    path = tmp_path / "showers.h5"
    outputs.check_new_file(path, overwrite=False)
    path.write_text("x")
    with pytest.raises(OutputError, match="already exists.*--overwrite"):
        outputs.check_new_file(path, overwrite=False)
    outputs.check_new_file(path, overwrite=True)
    with pytest.raises(OutputError, match="is a folder"):
        outputs.check_new_file(tmp_path, overwrite=True)


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_temporaries_of_killed_writers_are_cleaned(tmp_path):
    target = tmp_path / "showers.h5"
    dead = tmp_path / f".showers.h5.{_dead_pid()}-0a1b2c3d.tmp"
    live = outputs.temp_name(target)  # this process: still writing
    legacy_old, legacy_new = tmp_path / ".showers.h5.deadbeef.tmp", tmp_path / ".showers.h5.cafe0123.tmp"
    other = tmp_path / ".other.h5.1-aaaa.tmp"
    for path in (dead, live, legacy_old, legacy_new, other):
        path.write_text("partial")
    day_ago = time.time() - outputs.LEGACY_AGE_S - 60
    os.utime(legacy_old, (day_ago, day_ago))
    folder = outputs.temp_dir(target)
    dead_folder = folder.rename(tmp_path / f".showers.h5.{_dead_pid()}-zz.tmp")
    removed = outputs.clean_stale(target)
    assert sorted(removed) == sorted([dead, legacy_old, dead_folder])
    assert live.exists() and legacy_new.exists() and other.exists() and not dead_folder.exists()
