"""``python -m report``: clear errors, no overwriting, --compare, and one small end-to-end run."""

import json

import pytest

from gan.outputs import MARKER
from report import results
from report.cli import main


def _results_file(path, **extra):
    path.mkdir(parents=True, exist_ok=True)
    return results.write({"schema": results.SCHEMA_VERSION, "models": {"default": {"x": 1.0}}, **extra},
                         path / results.RESULTS_FILE)


def test_unknown_variant_is_a_one_line_error(tmp_path, capsys):
    assert main(["--variants", "fp32,no-such-variant", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown variant(s) no-such-variant; known variants:" in err and "bf16" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_unknown_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["--models", "mine", "--out", str(tmp_path / "r")]) == 2
    assert "unknown model(s) mine; known models: default, cern2017" in capsys.readouterr().err


def test_refuses_to_overwrite_an_earlier_report(tmp_path, capsys):
    earlier = tmp_path / "r"
    earlier.mkdir()
    (earlier / "report.md").write_text("earlier")
    assert main(["--variants", "bf16", "--out", str(earlier)]) == 2
    err = capsys.readouterr().err
    assert "already holds a report" in err and "--overwrite" in err
    assert (earlier / "report.md").read_text() == "earlier" and len(list(tmp_path.iterdir())) == 1


def test_overwrite_refuses_a_folder_the_suite_did_not_write(tmp_path, capsys):
    """Issue #14: `--out DIR --overwrite` wiped a folder holding thesis.tex and sub/data.csv."""
    mine = tmp_path / "thesis"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    (mine / "sub" / "data.csv").write_text("1,2")
    assert main(["--variants", "bf16", "--out", str(mine), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "not a report written by this suite" in err and err.count("\n") == 1
    assert (mine / "thesis.tex").read_text() == "years of work" and (mine / "sub" / "data.csv").is_file()


def test_overwrite_refuses_a_report_holding_a_users_file(tmp_path, capsys):
    old = _results_file(tmp_path / "r")  # a report of ours from before the marker existed
    (old.parent / "my-notes.txt").write_text("mine")
    assert main(["--variants", "bf16", "--out", str(old.parent), "--overwrite"]) == 2
    assert "holds files this suite did not write (my-notes.txt)" in capsys.readouterr().err
    assert (old.parent / "my-notes.txt").is_file() and old.is_file()


def test_compare_only_prints_what_moved(tmp_path, capsys):
    old = _results_file(tmp_path / "old")
    new = _results_file(tmp_path / "new")
    data = json.loads(new.read_text())
    data["models"]["default"]["x"] = 2.0
    new.write_text(json.dumps(data))
    assert main(["--compare", str(old), "--compare-only", str(tmp_path / "new")]) == 0
    assert "models/default/x: 1 -> 2 (+100%)" in capsys.readouterr().out


def test_compare_with_a_bad_file_is_a_clear_error(tmp_path, capsys):
    assert main(["--compare", str(tmp_path / "missing.json"), "--compare-only", str(tmp_path / "x.json")]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err


@pytest.mark.tf
@pytest.mark.slow
def test_small_study_writes_the_report_folder(tmp_path, capsys):
    out = tmp_path / "report"
    _results_file(tmp_path / "old")
    argv = ["--variants", "fp32,bf16", "--models", "default", "--showers", "100", "--batch-sizes", "1,4", "--pairs",
            "3", "--out", str(out), "--compare", str(tmp_path / "old"), "--quiet"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "default:" in stdout and "bf16" in stdout and "only in this run" in stdout
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.html", "results.json", "tradeoff.png", "default_longitudinal.png",
            "default_sampling_fraction.png", "default_cell_spectrum.png", "default_moments.png"} <= names
    r = results.read(out)
    bf16 = r["models"]["default"]["variants"]["bf16"]
    assert set(bf16["speed"]) == {"1", "4"} and bf16["speedup_at_largest_batch"]["batch"] == 4
    assert bf16["paired"]["shifts"] and bf16["geant4"] is not None
    # decided at the first stage, or grown through the settings' stages while it could not tell
    assert bf16["paired"]["stages"] in ([100], [100, 400], [100, 400, 1000])
    assert bf16["paired"]["showers"] == bf16["paired"]["stages"][-1] and r["models"]["default"]["showers"] == 100
    verdict = r["verdict"]["default"]
    assert "bf16" in sum(verdict.values(), [])
    md = (out / "report.md").read_text()
    assert "## Verdict" in md and "| bf16 |" in md and "Compared with an earlier report" in md
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    assert main(argv) == 2  # a second run refuses to overwrite it
    assert json.loads((out / MARKER).read_text())["kind"] == "report"
