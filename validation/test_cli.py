"""`python -m validation check`: verdict table and exit code 0 / 1 / 2 for candidates given as weight files or
saved variant folders (run in-process: TensorFlow is imported once)."""

import numpy as np
import pytest

from study.check import main

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    from gan.pretrained import DEFAULT_WEIGHTS, load_generator
    from gan.weights import save_weights

    out = tmp_path_factory.mktemp("candidates")
    generator = load_generator("default")
    kernel = generator.get_layer("conv3d_4").get_weights()[0]
    generator.get_layer("conv3d_4").set_weights([kernel * np.float32(1.02)])
    (out / "not_weights.h5").write_bytes(b"not an HDF5 file")
    return {"own": DEFAULT_WEIGHTS, "scaled": save_weights(generator, out / "scaled.h5"),
            "junk": out / "not_weights.h5", "dir": out}


def test_the_models_own_weights_keep_the_physics(weight_files, capsys):
    assert main(["check", "--model", "default", "--candidate", str(weight_files["own"]), "--showers", "100"]) == 0
    out = capsys.readouterr().out
    assert "VERDICT: keeps the physics" in out and "95% interval" in out and "distance to Geant4" in out


def test_a_two_percent_energy_scale_breaks_it(weight_files, capsys):
    assert main(["check", "--model", "default", "--candidate", str(weight_files["scaled"]), "--showers",
                 "100"]) == 1
    out = capsys.readouterr().out
    assert "VERDICT: breaks the physics" in out and "total_energy_mean at" in out


def test_a_saved_variant_folder_is_a_candidate(tmp_path, capsys):
    from gan.pretrained import load_generator
    from quant import registry

    registry.build("bf16", load_generator("default"), None).save(tmp_path / "bf16")
    code = main(["check", "--model", "default", "--candidate", str(tmp_path / "bf16"), "--showers", "100,400",
                 "--convention", "cern"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "VERDICT:" in out and "CERN GANutils.metric convention" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "nope", "--candidate", "x.h5"], "--model nope: unknown"),
    (["--model", "default", "--candidate", "/no/such/file.h5"], "no such file or folder"),
    (["--model", "default", "--candidate", "{junk}"], "not weights of the default architecture"),
    (["--model", "default", "--candidate", "{dir}"], "cannot load the saved variant"),
])
def test_bad_input_is_one_line_and_exit_2(weight_files, capsys, args, message):
    args = [a.format(junk=weight_files["junk"], dir=weight_files["dir"]) for a in args]
    assert main(["check", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
