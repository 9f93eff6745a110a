"""``python -m gan``: the main job on the embedded default, and clear errors on bad input."""

import subprocess
import sys

import numpy as np
import pytest

from gan import data
from gan.cli import main

pytestmark = pytest.mark.tf


def test_generate_writes_showers_figure_and_summary(tmp_path, capsys):
    assert main(["generate", "--n", "24", "--seed", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "accuracy metric vs Geant4" in out and "E_cal/E_p" in out
    showers = data.read_showers(tmp_path / "showers.h5")
    assert showers.ecal.shape == (24, 25, 25, 25) and np.all(showers.ecal >= 0)
    assert (tmp_path / "physics.png").stat().st_size > 10_000


def test_summary_of_the_reference_sample(capsys):
    from gan.pretrained import DEFAULT_REFERENCE

    assert main(["summary", str(DEFAULT_REFERENCE), "--energy-range", "100:150"]) == 0
    assert "100-150" in capsys.readouterr().out


@pytest.mark.parametrize(("argv_tail", "message"), [
    (["--model", "missing_weights.h5"], "missing_weights.h5: weight file not found"),
    (["--reference", "no_such_g4.h5"], "no_such_g4.h5: file not found"),
])
def test_bad_input_is_a_one_line_error(tmp_path, capsys, argv_tail, message):
    assert main(["generate", "--out", str(tmp_path / "o"), *argv_tail]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "showers.h5").exists()


def test_bad_shower_file_from_the_shell(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    run = subprocess.run([sys.executable, "-m", "gan", "summary", str(bad)], capture_output=True, text=True)
    assert run.returncode == 2
    assert "broken.h5: not a readable HDF5 file" in run.stderr and "Traceback" not in run.stderr


def test_energy_range_argument_is_validated(capsys):
    with pytest.raises(SystemExit):
        main(["summary", "x.h5", "--energy-range", "200:100"])
    assert "need 0 < LOW <= HIGH" in capsys.readouterr().err


# --- issue #14: nothing overwritten without --overwrite, one-line errors, warnings, streaming -----------------------

def _reference(path, energies):
    from synthetic import synthetic_showers

    energy = np.asarray(energies, dtype=np.float32)
    data.write_showers(path, (synthetic_showers(energy), energy))
    return path


def _weights(tmp_path, edit):
    """A copy of the default generator's weights with ``edit(h5py.File)`` applied."""
    import shutil

    import h5py

    from gan.pretrained import DEFAULT_WEIGHTS

    path = tmp_path / "weights.h5"
    shutil.copyfile(DEFAULT_WEIGHTS, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _first_weight(f):
    group = f[_text(f.attrs["layer_names"][0])]
    return group, _text(group.attrs["weight_names"][0])


def _nan(f):
    group, name = _first_weight(f)
    values = group[name][()]
    values.flat[0] = np.nan
    group[name][...] = values


def _missing_group(f):
    f.attrs["layer_names"] = [*map(_text, f.attrs["layer_names"]), "ghost"]


def _bad_name(f):
    group, _ = _first_weight(f)
    group.attrs["weight_names"] = ["kernel", *map(_text, group.attrs["weight_names"][1:])]


def _bad_metadata(f):
    f.attrs["metadata"] = "{not json"


@pytest.mark.parametrize(("edit", "message"), [
    (_nan, "has 1 NaN or inf value(s)"),
    (_missing_group, "layer group 'ghost' is listed in 'layer_names' but missing"),
    (_bad_name, "weight name 'kernel'"),
    (_bad_metadata, "'metadata' attribute is not valid JSON"),
    (None, "is a folder, not a weight file"),
])
def test_bad_weight_files_are_one_line_errors(tmp_path, capsys, edit, message):
    weights = tmp_path if edit is None else _weights(tmp_path, edit)
    assert main(["generate", "--model", str(weights), "--n", "4", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {weights}") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["generate", "--n", "-5"], "expected a positive integer, got '-5'"),
    (["generate", "--seed", "-1"], "expected a seed"),
    (["generate", "--energy-range", "5:inf"], "finite"),
    (["summary", "x.h5", "--max-events", "0"], "expected a positive integer"),
])
def test_bad_numbers_are_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err


def test_generate_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
    (tmp_path / "showers.h5").write_text("the user's earlier run")
    assert main(["generate", "--n", "4", "--out", str(tmp_path)]) == 2
    assert "showers.h5: already exists" in capsys.readouterr().err
    assert (tmp_path / "showers.h5").read_text() == "the user's earlier run"
    assert main(["generate", "--n", "4", "--out", str(tmp_path), "--overwrite"]) == 0
    assert len(data.read_showers(tmp_path / "showers.h5")) == 4


def test_reference_outside_the_default_bins_is_binned_and_warned(tmp_path, capsys):
    """Issue #14: a reference at 300-400 GeV wrote showers.h5 and then crashed; now every step completes."""
    reference = _reference(tmp_path / "g4.h5", np.linspace(300, 400, 12))
    assert main(["generate", "--reference", str(reference), "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "300-320" in captured.out and "accuracy metric" in captured.out
    assert "outside 10-250 GeV, the range model 'default' was trained on" in captured.err
    assert "binned over 300-400 GeV instead" in captured.err
    assert (tmp_path / "o" / "physics.png").is_file() and len(data.read_showers(tmp_path / "o" / "showers.h5")) == 12


def test_summary_of_events_outside_the_bins_drops_none(tmp_path, capsys):
    reference = _reference(tmp_path / "g4.h5", [5.0, 100.0, 600.0])
    assert main(["summary", str(reference)]) == 0
    captured = capsys.readouterr()
    counts = [int(line.split()[1]) for line in captured.out.splitlines()[2:]]
    assert sum(counts) == 3 and "binned over 0-600 GeV instead" in captured.err


def test_generate_streams_in_chunks_with_the_same_showers(tmp_path, monkeypatch, capsys):
    from gan import cli

    assert main(["generate", "--n", "10", "--seed", "5", "--out", str(tmp_path / "whole")]) == 0
    monkeypatch.setattr(cli, "CHUNK", 3)
    monkeypatch.setattr(cli, "COMPARE_EVENTS", 4)
    assert main(["generate", "--n", "10", "--seed", "5", "--out", str(tmp_path / "chunks")]) == 0
    assert "(the first 4)" in capsys.readouterr().out
    whole, chunks = (data.read_showers(tmp_path / d / "showers.h5") for d in ("whole", "chunks"))
    np.testing.assert_array_equal(whole.energy, chunks.energy)
    np.testing.assert_allclose(whole.ecal, chunks.ecal, rtol=1e-4, atol=1e-6)
