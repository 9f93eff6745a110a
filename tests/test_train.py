"""Training: mixed-precision bias gradients, EMA, stop/resume determinism, history and best-checkpoint logic, CLI."""

import json

import numpy as np
import pytest
from synthetic import synthetic_showers

from gan import data, model, weights
from gan.train import TrainConfig, read_best, record_evaluation, split, train

pytestmark = [pytest.mark.tf]


@pytest.fixture(scope="module")
def g4_files(tmp_path_factory):
    """Two tiny Geant4-like files: 16 events (the last 8, in two 20 GeV bins, held out) and 8 more."""
    folder = tmp_path_factory.mktemp("g4")
    paths = []
    for i, n in enumerate((16, 8)):
        energy = np.random.default_rng(i).uniform(10, 250, n).astype(np.float32)
        if i == 0:
            energy[8:] = np.repeat([105.0, 125.0], 4)
        paths.append(folder / f"g4_{i}.h5")
        data.write_showers(paths[-1], (synthetic_showers(energy, seed=i), energy))
    return paths


def config(g4_files, run_dir, **kw):
    return TrainConfig(data_paths=tuple(map(str, g4_files)), run_dir=str(run_dir), epochs=1, batch_size=4,
                       holdout_events=8, eval_events=8, eval_every=2, log_every=1, **kw)


def test_split_holds_out_the_last_events():
    assert split(100, 10) == (slice(0, 90), slice(90, 100))
    with pytest.raises(ValueError, match="holdout_events"):
        split(10, 10)


def _rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def _bias_gradients(generator, x):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(generator(x, training=True), tf.float32) ** 2)
    grads = tape.gradient(loss, generator.trainable_variables)
    return {v.path: np.asarray(g) for v, g in zip(generator.trainable_variables, grads, strict=True)
            if "bias" in v.path}


@pytest.mark.slow
def test_fp32_bias_gradients_under_mixed_bfloat16_match_float32():
    import keras

    from gan.train_precision import MIXED, training_copy

    keras.utils.set_random_seed(2)
    reference = model.build_generator()
    x = model.latent_input(model.sample_latent(4, 0), np.full(4, 150.0))
    expected = _bias_gradients(reference, x)
    mixed = _bias_gradients(training_copy(reference, MIXED), x)
    assert all(_rel_l2(expected[k], mixed[k]) < 0.1 for k in ("conv3d_2/bias", "conv3d_3/bias")), \
        {k: _rel_l2(expected[k], mixed[k]) for k in expected}
    # the comparison sees the defect it guards against: stock Conv3D layers sum the bias gradient in bf16
    stock = keras.models.clone_model(reference, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "dtype": "float32" if layer.name in ("conv3d_1", "conv3d_4", "re_lu_1") else MIXED}))
    stock.set_weights(reference.get_weights())
    stalled = _bias_gradients(stock, x)
    assert max(_rel_l2(expected[k], stalled[k]) for k in ("conv3d_2/bias", "conv3d_3/bias")) > 0.2


@pytest.mark.slow
def test_ema_update_and_export(g4_files, tmp_path):
    from gan.train import Trainer, _batch, load_training_showers, sampling_fraction_fit

    cfg = config(g4_files, tmp_path / "run")
    trainer = Trainer(cfg)
    before = [np.asarray(v).copy() for v in trainer.generator.weights]
    showers = load_training_showers(cfg)
    assert len(showers) == 16 and showers.ecal.sum() == pytest.approx(
        100 * sum(data.read_showers(p).ecal[:n].sum() for p, n in zip(g4_files, (8, 8), strict=True)), rel=1e-5)
    fit = sampling_fraction_fit(showers.energy, showers.ecal.sum(axis=(1, 2, 3)) / 100 / showers.energy)
    trainer.step(*_batch(showers, np.arange(4), np.random.default_rng(0), fit, cfg))
    after = [np.asarray(v) for v in trainer.generator.weights]
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))
    for avg, b, a in zip(trainer.ema, before, after, strict=True):  # first update: decay (1 + 0) / (10 + 0) = 0.1
        np.testing.assert_allclose(np.asarray(avg), 0.1 * b + 0.9 * a, rtol=1e-5, atol=1e-6)
    exported = trainer.export_generator(ema=True)  # float32, GeV: last kernel divided by the cell scale
    k_ema = np.asarray(trainer.ema[[v.path for v in trainer.generator.weights].index("conv3d_4/kernel")])
    np.testing.assert_allclose(exported.get_layer("conv3d_4").get_weights()[0], k_ema / 100, rtol=1e-6)


@pytest.mark.slow
def test_stop_and_resume_give_the_same_run(g4_files, tmp_path, capsys):
    whole = tmp_path / "whole"
    train(config(g4_files, whole))
    pieces = tmp_path / "pieces"
    train(config(g4_files, pieces, max_minutes=0.0))  # stops (checkpointed) after the first iteration
    assert "stopped at iteration 1" in capsys.readouterr().out
    best = train(config(g4_files, pieces))
    history = [json.loads(line) for line in (pieces / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in history] == [2, 4]
    assert all(len(h["bins"]) == 12 and not np.isnan(h["score"]) for h in history)
    reference = [json.loads(line) for line in (whole / "history.jsonl").read_text().splitlines()]
    assert [h["score"] for h in history] == pytest.approx([h["score"] for h in reference], rel=1e-4)
    a, b = (weights.read_weight_arrays(run / "generator_best_ema.h5") for run in (whole, pieces))
    for layer in a:
        for role in a[layer]:
            np.testing.assert_allclose(a[layer][role], b[layer][role], rtol=1e-4, atol=1e-7)
    g = model.build_generator()  # the best EMA generator loads into the CERN-layout model
    meta = weights.load_weights(g, best)
    assert meta["iteration"] == read_best(pieces)["iteration"] and meta["weights"] == "ema"
    with pytest.raises(ValueError, match="other settings.*learning_rate"):
        train(config(g4_files, pieces, learning_rate=1e-4))


def test_profile_distance_is_zero_for_the_same_showers_and_sees_a_shift_and_an_edge():
    import tensorflow as tf

    from gan.train import profile_distance

    energy = np.linspace(10, 250, 8).astype(np.float32)
    real = synthetic_showers(energy, seed=3)[..., None].astype(np.float32)
    same = float(profile_distance(tf, tf.constant(real), tf.constant(real), tf.constant(energy)))
    deeper = float(profile_distance(tf, tf.constant(np.roll(real, 2, axis=3)), tf.constant(real),
                                    tf.constant(energy)))
    edged = real.copy()
    edged[:, 0] += 0.01 * real.sum(axis=(1, 2, 3, 4))[:, None, None, None] / 625
    edge = float(profile_distance(tf, tf.constant(edged), tf.constant(real), tf.constant(energy)))
    assert same == pytest.approx(0.0, abs=1e-6)
    assert deeper > 0.1 and edge > 0.01


def test_profile_distance_to_target_profiles_is_the_distance_to_their_showers():
    import tensorflow as tf

    from gan.train import profile_distance, unit_profiles

    energy = np.linspace(10, 250, 8).astype(np.float32)
    real = tf.constant(synthetic_showers(energy, seed=3)[..., None].astype(np.float32))
    deeper = tf.constant(np.roll(real.numpy(), 2, axis=3))
    target = unit_profiles(tf, real)
    assert float(profile_distance(tf, real, deeper, tf.constant(energy), target)) == pytest.approx(0.0, abs=1e-6)
    assert float(profile_distance(tf, deeper, deeper, tf.constant(energy), target)) == pytest.approx(
        float(profile_distance(tf, deeper, real, tf.constant(energy))), rel=1e-5)
    # a shift that cancels between the energy halves is seen by four groups
    mixed = tf.constant(np.concatenate([np.roll(real.numpy()[:2], 1, axis=3), np.roll(real.numpy()[2:4], -1, axis=3),
                                        real.numpy()[4:]]))
    two, four = (float(profile_distance(tf, mixed, real, tf.constant(energy), groups=g)) for g in (2, 4))
    assert four > two + 0.05


def test_mean_profiles_per_10_gev_bin_and_the_trainers_lookup():
    import tensorflow as tf

    from gan.train import Trainer, mean_profiles, profile_bin, unit_profiles

    energy = np.array([12.0, 18.0, 35.0], np.float32)
    cells = synthetic_showers(energy, seed=4).astype(np.float32)
    each = unit_profiles(tf, tf.constant(cells[..., None])).numpy()
    table = mean_profiles(data.Showers(cells, energy))
    assert table.shape == (24, 3, 25)
    np.testing.assert_allclose(table[0], each[:2].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(table[2], each[2], rtol=1e-5)
    np.testing.assert_array_equal(table[1], table[0])  # empty: the nearest filled bin, the lower on a tie
    np.testing.assert_array_equal(table[23], table[2])
    assert profile_bin(np.array([5.0, 10.0, 19.9, 20.0, 249.9, 300.0])).tolist() == [0, 0, 0, 1, 23, 23]
    trainer = Trainer(TrainConfig(data_paths=(), profile_weight=1.0, profile_target="geant4-mean"), table)
    looked_up = trainer._target_profiles(tf.constant([0.12, 0.35, 2.6]))  # energies in units of 100 GeV
    np.testing.assert_array_equal(looked_up.numpy(), table[[0, 2, 23]])
    with pytest.raises(ValueError, match="reference profiles"):
        Trainer(TrainConfig(data_paths=(), profile_target="geant4-mean"))
    with pytest.raises(ValueError, match="profile_target must be one of"):
        Trainer(TrainConfig(data_paths=(), profile_target="geant4"))


def test_spread_distance_is_zero_at_the_reference_spread_and_sees_a_wider_one():
    import tensorflow as tf

    from gan.train import relative_spread, spread_distance, target_sum

    energy = np.repeat([20.0, 200.0], 500).astype(np.float32)
    fit = np.array([0.0, 0.0, 0.02])  # sf = 2% at every energy
    deviation = np.random.default_rng(5).choice([-1.0, 1.0], 1000) * np.repeat([0.05, 0.02], 500)
    sums = target_sum(fit, energy, 100.0) * (1 + deviation)
    spread = relative_spread(sums, energy, fit, 100.0)
    assert spread.shape == (24,) and spread[1] == pytest.approx(0.05, rel=1e-4)
    assert spread[19] == pytest.approx(0.02, rel=1e-4)
    reference = tf.constant(spread[[1] * 500 + [19] * 500])
    args = (tf.constant(target_sum(fit, energy, 100.0)), tf.constant(energy / 100), reference)
    assert float(spread_distance(tf, tf.constant(sums.astype(np.float32)), *args)) == pytest.approx(0, abs=1e-3)
    wider = (target_sum(fit, energy, 100.0) * (1 + 1.5 * deviation)).astype(np.float32)
    assert float(spread_distance(tf, tf.constant(wider), *args)) == pytest.approx(1.0, rel=1e-3)  # 0.5 per half


@pytest.mark.slow
def test_a_run_starts_from_another_runs_checkpoint_with_new_settings(g4_files, tmp_path, capsys):
    first = tmp_path / "first"
    train(config(g4_files, first, max_minutes=0.0))  # one iteration, checkpointed
    second = tmp_path / "second"
    train(config(g4_files, second, learning_rate=3e-4, profile_weight=10.0, profile_target="geant4-mean",
                 spread_weight=1.0, init_from=str(first), eval_per_event=2))
    out = capsys.readouterr().out
    assert "(init_from)" in out and "iteration 1" in out.split("(init_from)")[1].splitlines()[1]
    history = [json.loads(line) for line in (second / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in history] == [2, 4]
    assert all(b["n_gan"] == 2 * b["n_g4"] for h in history for b in h["bins"])  # eval_per_event
    saved = json.loads((second / "config.json").read_text())
    assert saved["init_from"] == str(first) and saved["profile_weight"] == 10.0
    assert saved["profile_target"] == "geant4-mean" and "target geant4-mean" in out
    with pytest.raises(ValueError, match="no checkpoint"):
        train(config(g4_files, tmp_path / "third", init_from=str(tmp_path / "empty")))


def test_a_run_begun_before_a_setting_existed_resumes_with_its_default(g4_files, tmp_path):
    from gan.train import _check_config

    cfg = config(g4_files, tmp_path)
    _check_config(tmp_path, cfg)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["profile_weight"], saved["init_from"], saved["profile_target"], saved["spread_weight"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    _check_config(tmp_path, cfg)  # no error: absent fields read as their defaults
    with pytest.raises(ValueError, match="profile_weight"):
        _check_config(tmp_path, config(g4_files, tmp_path, profile_weight=1.0))


def test_best_checkpoint_follows_the_score_and_history_is_kept(tmp_path):
    generator = model.build_generator()
    for iteration, score in ((100, 3.0), (200, 2.0), (300, 2.5), (400, 2.0)):
        entry = {"iteration": iteration, "epoch": iteration / 100, "score": score, "passed": False, "worst": {}}
        record_evaluation(tmp_path, entry, generator, {"iteration": iteration})
    assert read_best(tmp_path)["iteration"] == 200  # a tie does not replace the best
    assert weights.read_metadata(tmp_path / "generator_best_ema.h5")["iteration"] == 200
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [100, 200, 300, 400]
    met = {"iteration": 500, "epoch": 5.0, "score": 2.2, "passed": True, "worst": {}}
    record_evaluation(tmp_path, met, generator, {"iteration": 500})  # a met target beats a lower score
    lower = {"iteration": 600, "epoch": 6.0, "score": 0.5, "passed": False, "worst": {}}
    record_evaluation(tmp_path, lower, generator, {"iteration": 600})
    assert read_best(tmp_path)["iteration"] == 500


def test_resume_drops_history_written_after_the_checkpoint(tmp_path):
    from gan.train import _trim_history

    (tmp_path / "history.jsonl").write_text("".join(json.dumps({"iteration": i}) + "\n" for i in (2, 4, 6)))
    _trim_history(tmp_path, 4)
    assert (tmp_path / "history.jsonl").read_text().count("iteration") == 2


@pytest.mark.slow
def test_evaluate_command_prints_the_target_table(g4_files, tmp_path, capsys):
    from gan.cli import main

    path = weights.save_weights(model.build_generator(), tmp_path / "g.h5")
    assert main(["evaluate", str(path), "--g4", str(g4_files[0]), "--holdout-events", "8"]) == 0
    out = capsys.readouterr().out
    assert "8 held-out events of g4_0.h5 (events 8-15" in out and "target NOT met" in out
    assert main(["evaluate", str(path), "--g4", str(g4_files[0]), "--holdout-events", "8", "--per-event", "3"]) == 0
    assert "3 GAN showers per event" in capsys.readouterr().out


def test_card_table_is_replaced_between_its_markers():
    from gan.evaluate import BEGIN, END, card_with_table

    card = f"# card\n{BEGIN}\nold\n{END}\nrest\n"
    new = card_with_table(card, "TABLE", "measured now:")
    assert new.startswith("# card\n") and new.endswith("\nrest\n") and "TABLE" in new and "old" not in new
    with pytest.raises(ValueError, match="markers"):
        card_with_table("# card without markers\n", "TABLE", "x")


@pytest.mark.slow
def test_export_default_installs_the_best_generator_with_its_table(g4_files, tmp_path, monkeypatch, capsys):
    from gan import evaluate

    run = tmp_path / "run"
    best = weights.save_weights(model.build_generator(), run / "generator_best_ema.h5", {"iteration": 7, "epoch": 0.5})
    card = tmp_path / "MODEL_CARD.md"
    card.write_text(f"# card\n{evaluate.BEGIN}\nold table\n{evaluate.END}\n")
    targets = {"CARD": card, "FIGURE": tmp_path / "card.png", "DEFAULT_WEIGHTS": tmp_path / "generator.h5"}
    for name, path in targets.items():
        monkeypatch.setattr(evaluate, name, path)
    with pytest.raises(weights.WeightFileError, match="not found"):
        evaluate.export_default(tmp_path / "empty", g4_files[0], 8)
    evaluate.export_default(run, g4_files[0], 8)
    installed, original = (weights.read_weight_arrays(p) for p in (targets["DEFAULT_WEIGHTS"], best))
    assert all(np.array_equal(installed[k][r], original[k][r]) for k in original for r in original[k])
    text = card.read_text()
    assert "old table" not in text and "iteration 7" in text and "target NOT met" in text
    assert targets["FIGURE"].stat().st_size > 10_000 and "-> " in capsys.readouterr().out
