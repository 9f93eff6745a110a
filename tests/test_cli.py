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


@pytest.mark.parametrize("argv_tail, message", [
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
