"""Training: runs, checkpoints, resumes where it stopped, and exports a loadable generator."""

import json

import numpy as np
import pytest

from gan import data, model, weights
from gan.train import TrainConfig, split, train

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture
def tiny_g4(tmp_path):
    rng = np.random.default_rng(0)
    n = 24
    energy = rng.uniform(10, 250, n).astype(np.float32)
    ecal = np.zeros((n, 25, 25, 25), np.float32)
    ecal[:, 11:14, 11:14, 5:15] = (0.025 * energy / 90)[:, None, None, None]
    path = tmp_path / "g4.h5"
    data.write_showers(path, (ecal, energy))
    return path


def config(tiny_g4, run_dir, **kw):
    return TrainConfig(data_path=str(tiny_g4), run_dir=str(run_dir), epochs=1, batch_size=4,
                       holdout_events=8, eval_events=8, **kw)


def test_split_holds_out_the_last_events():
    assert split(100, 10) == (slice(0, 90), slice(90, 100))
    with pytest.raises(ValueError, match="holdout_events"):
        split(10, 10)


def test_train_stop_resume_and_export(tiny_g4, tmp_path, capsys):
    run = tmp_path / "run"
    train(config(tiny_g4, run, max_minutes=0.0), progress=False)
    assert "batch 1/4; run the same command again to resume" in capsys.readouterr().out
    assert not (run / "history.jsonl").exists()
    latest = train(config(tiny_g4, run), progress=False)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1] and np.isfinite(history[0]["moment_error"])
    meta = weights.read_metadata(latest)
    assert meta["epoch"] == 1 and meta["data"] == "g4.h5"
    g = model.build_generator()
    weights.load_weights(g, run / "generator_epoch_001.h5")
    assert model.generate(g, model.sample_latent(2, 0), np.array([50.0, 60.0])).shape == (2, 25, 25, 25)
