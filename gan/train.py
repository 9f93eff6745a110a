"""Training the 3DGAN on Geant4 showers, resumable, with a physics summary per epoch.

The recipe follows CERN's EcalEnergyGan training: the discriminator has three heads (real/fake BCE, primary
energy MAPE, summed cell energy MAPE; loss weights 6 / 0.2 / 0.1), one discriminator step on a real and a fake
batch, then two generator steps; label flipping on the discriminator's real/fake targets. Everything is fp32
(bf16 on AMX gives wrong conv1 outputs on TF 2.21; see README). Checkpoints hold both networks, both
optimizers and the position in the data, so a run stopped by ``--max-minutes`` or a crash resumes where it was.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gan import data, metrics, physics
from gan.model import ENERGY_SCALE_GEV, LATENT_SIZE, generate, sample_latent


@dataclass
class TrainConfig:
    data_path: str
    run_dir: str = "runs/default"
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 5e-4
    optimizer: str = "rmsprop"  # or "adam"
    loss_weights: tuple[float, float, float] = (6.0, 0.2, 0.1)
    label_flip: float = 0.05  # fraction of discriminator real/fake labels flipped
    holdout_events: int = 1120  # the file's last events, never trained on
    max_train_events: int | None = None
    checkpoint_minutes: float = 10.0
    max_minutes: float | None = None  # stop cleanly (checkpointed) after this wall time
    eval_events: int = 600
    seed: int = 1
    history: list = field(default_factory=list, repr=False)


def split(n_events: int, holdout: int) -> tuple[slice, slice]:
    """(train, held-out) event slices: the held-out events are the file's last ones."""
    if not 0 < holdout < n_events:
        raise ValueError(f"holdout_events must be in 1..{n_events - 1}, got {holdout}")
    return slice(0, n_events - holdout), slice(n_events - holdout, n_events)


def ecal_sum_fit(showers) -> np.ndarray:
    """Quadratic fit of summed cell energy (GeV) vs primary energy (GeV): the generator's sum target."""
    return np.polyfit(showers.energy, showers.ecal.sum(axis=(1, 2, 3)), 2)


class Trainer:
    """Owns the networks, optimizers, checkpoint and the compiled train steps."""

    def __init__(self, config: TrainConfig):
        import keras
        import tensorflow as tf

        from gan.model import build_discriminator, build_generator

        self.tf, self.config = tf, config
        keras.utils.set_random_seed(config.seed)  # weight initialisation and dropout
        self.generator, self.discriminator = build_generator(), build_discriminator()
        self.g_opt, self.d_opt = self._optimizer(), self._optimizer()
        self.position = tf.Variable([0, 0], dtype=tf.int64, name="epoch_batch")
        self.checkpoint = tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                              g_opt=self.g_opt, d_opt=self.d_opt, position=self.position)
        self.manager = tf.train.CheckpointManager(self.checkpoint, Path(config.run_dir) / "checkpoints", 2)
        self.d_step = tf.function(self._d_step, reduce_retracing=True)
        self.g_step = tf.function(self._g_step, reduce_retracing=True)

    def _optimizer(self):
        import keras

        lr = self.config.learning_rate
        if self.config.optimizer == "adam":
            return keras.optimizers.Adam(lr, beta_1=0.5)
        return keras.optimizers.RMSprop(lr)

    def _loss(self, outputs, label, energy, ecal_sum):
        tf = self.tf
        fake_p, aux, ecal = outputs
        eps = 1e-7
        p = tf.clip_by_value(tf.reshape(fake_p, [-1]), eps, 1 - eps)
        bce = -tf.reduce_mean(label * tf.math.log(p) + (1 - label) * tf.math.log(1 - p))
        mape_e = 100 * tf.reduce_mean(tf.abs(energy - tf.reshape(aux, [-1])) / tf.maximum(tf.abs(energy), eps))
        mape_s = 100 * tf.reduce_mean(tf.abs(ecal_sum - tf.reshape(ecal, [-1])) / tf.maximum(tf.abs(ecal_sum), eps))
        w = self.config.loss_weights
        return w[0] * bce + w[1] * mape_e + w[2] * mape_s, bce

    def _d_step(self, real, z, energy, real_sum, fake_sum, real_label, fake_label):
        tf = self.tf
        fake = self.generator(z * energy[:, None], training=False)
        with tf.GradientTape() as tape:
            loss_r, bce_r = self._loss(self.discriminator(real, training=True), real_label, energy, real_sum)
            loss_f, bce_f = self._loss(self.discriminator(fake, training=True), fake_label, energy, fake_sum)
            loss = 0.5 * (loss_r + loss_f)
        variables = self.discriminator.trainable_variables
        self.d_opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, tf.reduce_sum(fake) / tf.reduce_sum(real)

    def match_output_scale(self, z, energy, target_sum) -> float:
        """Rescale the last (bias-free, ReLU) convolution so generated showers start at the target summed energy.

        A fresh generator's showers are ~10^4 times too energetic; RMSprop then walks the output down for many
        steps, overshoots and kills the final ReLU (a dead generator). Starting at the right scale avoids that.
        """
        fake = np.asarray(self.generator(z * energy[:, None], training=True))
        ratio = float(np.sum(target_sum) / max(float(fake.sum()), 1e-30))
        conv = self.generator.get_layer("conv3d_4")
        conv.set_weights([w * ratio for w in conv.get_weights()])
        return ratio

    def _g_step(self, z, energy, target_sum):
        tf = self.tf
        with tf.GradientTape() as tape:
            fake = self.generator(z * energy[:, None], training=True)
            loss, bce = self._loss(self.discriminator(fake, training=False), tf.ones_like(energy), energy, target_sum)
        variables = self.generator.trainable_variables
        self.g_opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, bce


def _labels(rng, n, flip):
    real, fake = np.ones(n, np.float32), np.zeros(n, np.float32)
    flips = rng.random(n) < flip
    real[flips], fake[flips] = 0.0, 1.0
    return real, fake


def evaluate(generator, heldout, n_events: int, seed: int) -> dict:
    """Physics of the generator against held-out Geant4 events (same energies): paper metric + summary."""
    ref = heldout.select(np.arange(min(n_events, len(heldout))))
    fake = generate(generator, sample_latent(len(ref), seed), ref.energy)
    acc = metrics.accuracy_metric(ref.ecal, ref.energy, fake, ref.energy)
    sf_fake = physics.binned_mean_std(physics.sampling_fraction(fake, ref.energy), ref.energy,
                                      physics.DEFAULT_ENERGY_EDGES_GEV)
    sf_g4 = physics.binned_mean_std(physics.sampling_fraction(ref.ecal, ref.energy), ref.energy,
                                    physics.DEFAULT_ENERGY_EDGES_GEV)
    return {"accuracy_total": acc["total"], "moment_error": acc["moment_error"],
            "profile_error": acc["profile_error"],
            "sampling_fraction_gan": [float(v) for v in sf_fake[0]],
            "sampling_fraction_g4": [float(v) for v in sf_g4[0]],
            "sampling_fraction_spread_gan": [float(v) for v in sf_fake[1]],
            "sampling_fraction_spread_g4": [float(v) for v in sf_g4[1]]}


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train (or resume) into ``config.run_dir``; return the path of the latest exported generator."""
    from tqdm import tqdm

    from gan.weights import save_weights

    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    n_all = data.count_showers(config.data_path)
    train_slice, held_slice = split(n_all, config.holdout_events)
    n_train = train_slice.stop if config.max_train_events is None else min(train_slice.stop, config.max_train_events)
    showers = data.read_showers(config.data_path, max_events=n_train)
    heldout = data.read_showers(config.data_path, start=held_slice.start)
    sum_fit = ecal_sum_fit(showers)
    trainer = Trainer(config)
    if trainer.manager.latest_checkpoint:
        trainer.checkpoint.restore(trainer.manager.latest_checkpoint)
    else:
        _match_scale(trainer, showers, sum_fit, config)
    epoch, batch0 = (int(v) for v in trainer.position.numpy())
    (run_dir / "config.json").write_text(json.dumps(asdict(config) | {"history": None}, indent=1, default=str))
    n_batches = len(showers) // config.batch_size
    started, last_ckpt = time.monotonic(), time.monotonic()
    latest = run_dir / "generator_latest.h5"
    while epoch < config.epochs:
        rng = np.random.default_rng([config.seed, epoch])
        order = rng.permutation(len(showers))
        bar = tqdm(range(batch0, n_batches), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress,
                   initial=batch0, total=n_batches, unit="batch")
        for b in bar:
            brng = np.random.default_rng([config.seed, epoch, b])
            idx = np.sort(order[b * config.batch_size:(b + 1) * config.batch_size])
            d_loss, g_loss, fake_over_real = _iteration(trainer, showers, idx, brng, sum_fit, config)
            bar.set_postfix(d=f"{d_loss:.2f}", g=f"{g_loss:.2f}", energy_fake_over_real=f"{fake_over_real:.3f}")
            trainer.position.assign([epoch, b + 1])
            out_of_time = config.max_minutes is not None and time.monotonic() - started > 60 * config.max_minutes
            if out_of_time or time.monotonic() - last_ckpt > 60 * config.checkpoint_minutes:
                trainer.manager.save()
                save_weights(trainer.generator, latest, _metadata(config, epoch, b + 1, n_batches))
                last_ckpt = time.monotonic()
            if out_of_time:
                bar.close()
                print(f"stopped after {config.max_minutes} min at epoch {epoch + 1}, batch {b + 1}/{n_batches}; "
                      "run the same command again to resume")
                return latest
        epoch, batch0 = epoch + 1, 0
        trainer.position.assign([epoch, 0])
        trainer.manager.save()
        last_ckpt = time.monotonic()
        _end_of_epoch(trainer, config, heldout, epoch, n_batches, latest)
    return latest


def _iteration(trainer, showers, idx, rng, sum_fit, config):
    """One discriminator step and two generator steps; returns (d_loss, g_loss, fake/real summed energy)."""
    n = len(idx)
    real = showers.ecal[idx][..., None]
    energy = showers.energy[idx] / ENERGY_SCALE_GEV
    real_sum = real.sum(axis=(1, 2, 3, 4))
    target_sum = np.polyval(sum_fit, showers.energy[idx]).astype(np.float32)
    real_label, fake_label = _labels(rng, n, config.label_flip)
    z = rng.standard_normal((n, LATENT_SIZE), dtype=np.float32)
    d_loss, fake_over_real = trainer.d_step(real, z, energy, real_sum, target_sum, real_label, fake_label)
    g_losses = []
    for _ in range(2):
        z = rng.standard_normal((n, LATENT_SIZE), dtype=np.float32)
        g_losses.append(float(trainer.g_step(z, energy, target_sum)[0]))
    return float(d_loss), float(np.mean(g_losses)), float(fake_over_real)


def _match_scale(trainer, showers, sum_fit, config):
    rng = np.random.default_rng([config.seed, 10**6])
    idx = rng.choice(len(showers), min(len(showers), 4 * config.batch_size), replace=False)
    energy = showers.energy[idx]
    z = rng.standard_normal((len(idx), LATENT_SIZE), dtype=np.float32)
    ratio = trainer.match_output_scale(z, energy / ENERGY_SCALE_GEV, np.polyval(sum_fit, energy))
    print(f"initial generator output rescaled by {ratio:.3g} to the Geant4 summed energy")


def _metadata(config, epoch, batch, n_batches):
    return {"model": "3dgan-generator", "data": Path(config.data_path).name, "epoch": epoch, "batch": batch,
            "batches_per_epoch": n_batches, "batch_size": config.batch_size, "seed": config.seed,
            "optimizer": config.optimizer, "learning_rate": config.learning_rate}


def _end_of_epoch(trainer, config, heldout, epoch, n_batches, latest):
    from gan.weights import save_weights

    run_dir = Path(config.run_dir)
    summary = evaluate(trainer.generator, heldout, config.eval_events, config.seed)
    summary |= {"epoch": epoch, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(run_dir / "history.jsonl", "a") as f:
        f.write(json.dumps(summary) + "\n")
    meta = _metadata(config, epoch, 0, n_batches) | {"accuracy_total": summary["accuracy_total"]}
    save_weights(trainer.generator, run_dir / f"generator_epoch_{epoch:03d}.h5", meta)
    save_weights(trainer.generator, latest, meta)
    pairs = zip(summary["sampling_fraction_gan"], summary["sampling_fraction_g4"])
    sf = ", ".join(f"{g:.4f}/{r:.4f}" for g, r in pairs)
    print(f"epoch {epoch}: accuracy metric {summary['accuracy_total']:.3f} "
          f"(moments {summary['moment_error']:.3f}, profiles {summary['profile_error']:.3f}); "
          f"sampling fraction GAN/G4 per bin: {sf}")
