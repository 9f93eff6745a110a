"""``python -m quant``: list, build, report and generate in-process; errors are one line and leave nothing."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from gan import data
from gan.outputs import MARKER
from quant.cli import main


@pytest.fixture(scope="module")
def fp32_dir(tmp_path_factory):
    """An fp32 variant of the embedded default generator, built by the CLI."""
    out = tmp_path_factory.mktemp("variants") / "fp32"
    assert main(["build", "fp32", "--calibration-n", "8", "--out", str(out)]) == 0
    return out


def test_list_names_every_variant_and_its_availability(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("fp32", "bf16", "bf16-full"):
        assert f"\n{name} " in f"\n{out}"
    assert "available" in out and "reference" in out


@pytest.mark.tf
def test_build_prints_op_report_and_size(fp32_dir, capsys):
    assert main(["report", str(fp32_dir)]) == 0
    out = capsys.readouterr().out
    assert "fp32: fp32 7  (source: Keras graph (all layers float32))" in out
    assert "size on disk:" in out and "weights: 3,491,792 bytes" in out
    assert sorted(p.name for p in fp32_dir.iterdir()) == [MARKER, "generator.h5", "variant.json"]
    assert not [p for p in fp32_dir.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.tf
def test_generate_streams_showers_independent_of_batch_size(fp32_dir, tmp_path, capsys):
    small, whole = tmp_path / "small.h5", tmp_path / "whole.h5"
    assert main(["generate", str(fp32_dir), "--n", "10", "--batch-size", "4", "--energy-range", "50:60",
                 "--out", str(small)]) == 0
    assert "10 showers from 'fp32'" in capsys.readouterr().out
    assert main(["generate", str(fp32_dir), "--n", "10", "--batch-size", "10", "--energy-range", "50:60",
                 "--out", str(whole)]) == 0
    a, b = data.read_showers(small), data.read_showers(whole)
    assert a.ecal.shape == (10, 25, 25, 25) and np.all(a.ecal >= 0) and a.ecal.sum() > 0
    assert np.all((a.energy >= 50) & (a.energy <= 60))
    np.testing.assert_array_equal(a.energy, b.energy)
    np.testing.assert_allclose(a.ecal, b.ecal, rtol=1e-4, atol=1e-5)
    with h5py.File(small) as f:
        assert f.attrs["variant"] == "fp32" and f.attrs["seed"] == 1


@pytest.mark.tf
def test_build_refuses_a_non_empty_folder(fp32_dir, capsys):
    assert main(["build", "fp32", "--out", str(fp32_dir)]) == 2
    assert "already holds a saved variant" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["build", "int3", "--out", "{tmp}/v"], "unknown variant 'int3'; known variants: "),
    pytest.param(["build", "fp32", "--model", "{tmp}/none.h5", "--out", "{tmp}/v"], "none.h5: weight file not found",
                 marks=pytest.mark.tf),
    (["report", "{tmp}/v"], "not a saved variant"),
    (["generate", "{tmp}/v", "--n", "4", "--out", "{tmp}/s.h5"], "not a saved variant"),
])
def test_errors_are_one_line_and_leave_nothing(tmp_path, capsys, argv, message):
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_usage_errors(capsys):
    for argv in (["generate", "x", "--n", "0", "--out", "s.h5"],
                 ["generate", "x", "--n", "4", "--out", "s.h5", "--energy-range", "250:10"]):
        with pytest.raises(SystemExit):
            main(argv)
    assert "need 0 < LOW <= HIGH" in capsys.readouterr().err


def test_python_dash_m_quant(tmp_path):
    run = subprocess.run([sys.executable, "-m", "quant", "report", str(tmp_path / "missing")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and "Traceback" not in run.stderr


# --- issue #14 ------------------------------------------------------------------------------------------------------

@pytest.mark.tf
def test_generate_refuses_an_existing_file_and_warns_outside_the_trained_range(fp32_dir, tmp_path, capsys):
    out = tmp_path / "s.h5"
    out.write_text("the user's")
    argv = ["generate", str(fp32_dir), "--n", "2", "--energy-range", "5000:6000", "--out", str(out)]
    assert main(argv) == 2
    assert "s.h5: already exists" in capsys.readouterr().err and out.read_text() == "the user's"
    assert main([*argv, "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "energies 5000-6000 GeV extend outside 10-250 GeV, the range model 'default' was trained on" in err
    assert len(data.read_showers(out)) == 2


@pytest.mark.tf
def test_build_overwrites_only_a_variant_it_wrote(fp32_dir, tmp_path, capsys):
    import shutil

    ours = tmp_path / "ours"
    shutil.copytree(fp32_dir, ours)
    argv = ["build", "fp32", "--calibration-n", "8", "--calibration-energy-range", "5000:6000"]
    assert main([*argv, "--out", str(ours), "--overwrite"]) == 0
    assert "calibration energies 5000-6000 GeV extend outside 10-250 GeV" in capsys.readouterr().err
    (ours / "thesis.tex").write_text("mine")
    assert main([*argv, "--out", str(ours), "--overwrite"]) == 2
    assert "holds files this suite did not write (thesis.tex)" in capsys.readouterr().err
    assert (ours / "thesis.tex").read_text() == "mine" and (ours / "generator.h5").is_file()


@pytest.mark.parametrize(("content", "message"), [
    ("[]", "not a saved variant (expected a JSON object"),
    ('{"variant": 3}', "not a saved variant (expected a JSON object"),
    ("{", "unreadable"),
])
def test_malformed_variant_file_is_a_one_line_error(tmp_path, capsys, content, message):
    (tmp_path / "variant.json").write_text(content)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_sensitivity_refuses_to_overwrite_its_table(tmp_path, capsys):
    pytest.importorskip("openvino")
    (tmp_path / "default-openvino-int8.md").write_text("the user's edited table")
    assert main(["sensitivity", "--out", str(tmp_path)]) == 2
    assert "default-openvino-int8.md: already exists" in capsys.readouterr().err
    assert (tmp_path / "default-openvino-int8.md").read_text() == "the user's edited table"
