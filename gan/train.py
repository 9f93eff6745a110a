"""Training the 3DGAN on Geant4 showers: resumable, mixed bfloat16, EMA generator, best checkpoint by physics.

The losses follow CERN's EcalEnergyGan: the discriminator has three heads (real/fake BCE, primary energy MAPE,
summed cell energy MAPE; weights 6 / 0.2 / 0.1); each iteration is a discriminator step on a real batch, one on
a fake batch (5% of the real/fake labels flipped) and two generator steps, all in one ``tf.function``.

What differs from the first (1-epoch) recipe, and why:

* Cells are multiplied by ``cell_scale`` (100) during training. The untrained generator's output is then ~30x
  too large instead of ~3000x, so the last convolution is not rescaled at start. Rescaling it by ~1e-4 (the old
  recipe) left a kernel of ~1e-5 that RMSprop moves by ~lr = 1e-3 per step: after one iteration its sum was
  large and negative, 98% of the output ReLU was dead, and the 0.1% still alive sat in the last layer (z = 24),
  which is where the 1-epoch model's energy stayed. Exported weights divide the last kernel by ``cell_scale``
  (ReLU commutes with a positive scale), so they produce GeV in CERN's layout.
* The generator steps see the discriminator in training mode (batch statistics in its BatchNormalization, as
  in CERN's Keras-2 training), not in inference mode: the discriminator is trained on all-real and all-fake
  batches, and with its moving statistics it barely separates them (measured at iteration 259 of a run that did
  this: D(real) 0.30 / D(fake) 0.18 in inference mode, 0.74 / 0.03 in training mode), so the generator learned
  no shower shape (flat profiles, ~6x Geant4's widths). The first recipe did the same.
* Two discriminator updates per iteration, one on the real and one on the fake batch, as CERN's recipe.
* The generator's summed-energy target is ``E * sf(E)`` with sf a fit of Geant4's E_cal/E_p vs log E.
* Keras ``mixed_bfloat16`` (``precision``) with conv3d_1, the output and the discriminator heads in float32 and
  the conv biases added in float32 (:mod:`gan.train_precision`): ~2.5-3x faster than float32 on AVX512-BF16.
* An exponential moving average (EMA) of the generator's weights is what gets evaluated and exported.
* Every ``eval_every`` iterations the EMA generator is compared with the held-out Geant4 events per 20 GeV
  bin (:mod:`gan.agreement`), logged to ``history.jsonl``; the best is kept (a met target first, then by score).
* ``profile_weight`` (0 = CERN's losses) adds to the generator loss the L1 distance of the batch-mean unit-sum
  x, y and z profiles of its showers to the real batch's (same energies), in the batch's lower and upper energy
  halves: it reduces the period-3 ripple of the upsampling in the longitudinal profile and removes the energy
  the generator left in the edge cells (which made the widths 1.4-1.5x Geant4's above 190 GeV).
  ``profile_target = "geant4-mean"`` compares with the training set's mean profiles in 10 GeV bins at the
  batch's energies instead of the real batch's (16 showers per half): a target without sampling noise, for the
  last ~0.1-layer shift and ripple of the shower maximum; ``profile_groups`` splits the batch in more energy groups.
* ``spread_weight`` (0 = off) adds, per energy group, |rms relative deviation of the generated summed energies from
  ``target_sum`` - the training set's own (10 GeV bins)| / the latter: the adversarial losses left the spread of
  the sampling fraction at 1.2-1.5x Geant4's; weight 5 brought it to 1.1-1.35x in ~400 iterations.
* ``init_from`` starts a new run (other settings, e.g. a lower learning rate) from another run's latest checkpoint.

Training events: the first data file without its last ``holdout_events`` (the held-out set) plus every further
file in full. Checkpoints (both networks, optimizers, EMA, position) every ``checkpoint_minutes``, at
``max_minutes`` and on SIGTERM; running the same command again resumes bit-for-bit on the same machine.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gan import agreement, data
from gan.model import ENERGY_SCALE_GEV, LATENT_SIZE, SHOWER_SHAPE, build_generator, generate, sample_latent

BEST_WEIGHTS, BEST_JSON, HISTORY = "generator_best_ema.h5", "best.json", "history.jsonl"
RUN_TIME_FIELDS = {"max_minutes", "checkpoint_minutes", "threads", "log_every", "eval_every"}  # may change on resume


@dataclass
class TrainConfig:
    data_paths: tuple[str, ...]  # first file: its last holdout_events are held out; the others are used whole
    run_dir: str = "runs/default"
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    loss_weights: tuple[float, float, float] = (6.0, 0.2, 0.1)
    label_flip: float = 0.05  # fraction of discriminator real/fake labels flipped
    holdout_events: int = 1120  # the first file's last events, never trained on
    max_train_events: int | None = None
    cell_scale: float = 100.0  # cells are multiplied by this during training
    precision: str = "mixed_bfloat16"  # or "float32"
    ema_decay: float = 0.999
    eval_every: int = 300  # iterations between physics evaluations of the EMA generator
    eval_events: int = 1120  # held-out events used (the first so many)
    eval_per_event: int = 1  # GAN showers per held-out event in each evaluation (more: a less noisy best)
    checkpoint_minutes: float = 15.0
    max_minutes: float | None = None  # stop cleanly (checkpointed) after this wall time
    threads: int = 2
    log_every: int = 50
    seed: int = 1
    profile_weight: float = 0.0  # generator loss: weight of the x/y/z profile distance (0 = CERN's losses only)
    init_from: str | None = None  # a run folder whose latest checkpoint starts this run (weights, EMA, position)
    profile_target: str = "batch"  # or "geant4-mean": the training set's mean profiles in 10 GeV bins
    profile_groups: int = 2  # the profile loss compares group means, the batch split in this many by energy
    spread_weight: float = 0.0  # generator loss: weight of the summed-energy spread distance to Geant4's


PROFILE_TARGETS = ("batch", "geant4-mean")
PROFILE_BIN_GEV = (10.0, 250.0, 10.0)  # first edge, last edge, width of the geant4-mean profile bins
N_PROFILE_BINS = round((PROFILE_BIN_GEV[1] - PROFILE_BIN_GEV[0]) / PROFILE_BIN_GEV[2])


def split(n_events: int, holdout: int) -> tuple[slice, slice]:
    """(train, held-out) event slices: the held-out events are the file's last ones."""
    if not 0 < holdout < n_events:
        raise ValueError(f"holdout_events must be in 1..{n_events - 1}, got {holdout}")
    return slice(0, n_events - holdout), slice(n_events - holdout, n_events)


def load_training_showers(config: TrainConfig) -> data.Showers:
    """All training events in one float32 array, cells times ``cell_scale`` (one copy in memory)."""
    first, *others = config.data_paths
    counts = [split(data.count_showers(first), config.holdout_events)[0].stop]
    counts += [data.count_showers(path) for path in others]
    if config.max_train_events is not None:
        counts = [min(c, max(config.max_train_events - sum(counts[:i]), 0)) for i, c in enumerate(counts)]
    ecal = np.empty((sum(counts), *SHOWER_SHAPE), np.float32)
    energy = np.empty(sum(counts), np.float32)
    start = 0
    for path, count in zip(config.data_paths, counts, strict=True):
        if count == 0:
            continue
        for chunk in data.iter_showers(path, max_events=count):
            ecal[start:start + len(chunk)] = chunk.ecal * np.float32(config.cell_scale)
            energy[start:start + len(chunk)] = chunk.energy
            start += len(chunk)
    return data.Showers(ecal, energy)


def load_heldout(config: TrainConfig) -> data.Showers:
    """The first ``eval_events`` of the first file's held-out tail (GeV)."""
    first = config.data_paths[0]
    held = split(data.count_showers(first), config.holdout_events)[1]
    return data.read_showers(first, start=held.start, max_events=config.eval_events)


def sampling_fraction_fit(energy: np.ndarray, sampling_fraction: np.ndarray) -> np.ndarray:
    """Quadratic fit of E_cal/E_p vs ln(E/GeV): the generator's summed-energy target is E * sf(E)."""
    return np.polyfit(np.log(energy), sampling_fraction, 2)


def target_sum(fit: np.ndarray, energy_gev: np.ndarray, cell_scale: float) -> np.ndarray:
    return (cell_scale * energy_gev * np.polyval(fit, np.log(energy_gev))).astype(np.float32)


AXES = ((2, 3, 4), (1, 3, 4), (1, 2, 4))  # summed for the x, y, z profiles (cells are [batch, x, y, z, 1])


def unit_profiles(tf, showers):
    """[batch, 3, 25]: each shower's x, y and z profiles, each normalised to unit sum."""
    p = tf.stack([tf.reduce_sum(showers, axis=axes) for axes in AXES], axis=1)
    return p / (tf.reduce_sum(p, axis=2, keepdims=True) + 1e-7)


def energy_groups(tf, energy, groups: int):
    """[batch, groups] averaging weights: the batch split by energy rank into ``groups`` equal groups."""
    rank = tf.argsort(tf.argsort(energy))
    members = tf.one_hot(rank * groups // tf.shape(energy)[0], groups)
    return members / tf.maximum(tf.reduce_sum(members, axis=0, keepdims=True), 1.0)


def spread_distance(tf, fake_sums, target_sums, energy, reference_spread, groups: int = 2):
    """Sum over energy groups of |rms of the fakes' relative deviation from the target sums - the reference
    relative spread (mean over the group's events)| / that reference spread."""
    members = energy_groups(tf, energy, groups)
    rms = tf.sqrt(tf.einsum("bh,b->h", members, tf.square(fake_sums / target_sums - 1.0)) + 1e-12)
    want = tf.einsum("bh,b->h", members, reference_spread)
    return tf.reduce_sum(tf.abs(rms - want) / want)


def relative_spread(sums: np.ndarray, energy_gev: np.ndarray, fit: np.ndarray, cell_scale: float) -> np.ndarray:
    """[bins]: per PROFILE_BIN_GEV bin, the rms relative deviation of showers' summed cells ``sums`` (times
    ``cell_scale``) from ``target_sum`` (an empty bin takes the nearest filled bin's)."""
    deviation = sums / target_sum(fit, energy_gev, cell_scale) - 1.0
    index = profile_bin(energy_gev)
    counts = np.bincount(index, minlength=N_PROFILE_BINS)
    squares = np.bincount(index, weights=deviation ** 2, minlength=len(counts))
    nearest = _nearest_filled(counts)
    return np.sqrt(squares[nearest] / counts[nearest]).astype(np.float32)


def _nearest_filled(counts: np.ndarray) -> np.ndarray:
    """For each bin, the nearest bin with counts (itself if filled; the lower one on a tie)."""
    filled = np.flatnonzero(counts)
    if not len(filled):
        raise ValueError("no showers in any energy bin")
    return filled[np.abs(np.arange(len(counts))[:, None] - filled[None, :]).argmin(axis=1)]


def profile_distance(tf, fake, real, energy, target=None, groups: int = 2):
    """L1 between the batch-mean unit-sum x, y and z profiles of fake and real showers (same energies), summed
    over the three axes and over ``groups`` equal groups of the batch by energy (2: lower and upper half).
    ``target`` ([batch, 3, 25]), if given, replaces the real showers' profiles."""
    members = energy_groups(tf, energy, groups)
    profiles = (unit_profiles(tf, fake), unit_profiles(tf, real) if target is None else target)
    means = [tf.einsum("bh,bap->hap", members, p) for p in profiles]
    return tf.reduce_sum(tf.abs(means[0] - means[1]))


def profile_bin(energy_gev: np.ndarray) -> np.ndarray:
    """Index of the geant4-mean profile bin of each energy (clipped to the first and last bin)."""
    low, _, width = PROFILE_BIN_GEV
    return np.clip(((np.asarray(energy_gev) - low) // width).astype(np.int64), 0, N_PROFILE_BINS - 1)


def mean_profiles(showers: data.Showers, chunk: int = 1024) -> np.ndarray:
    """[bins, 3, 25] float32: mean unit-sum x, y, z profiles of ``showers`` in the PROFILE_BIN_GEV bins; a bin
    without showers takes the nearest filled bin's (the lower one on a tie)."""
    n = N_PROFILE_BINS
    sums, counts = np.zeros((n, 3, SHOWER_SHAPE[0])), np.zeros(n)
    for i in range(0, len(showers), chunk):
        ecal, idx = showers.ecal[i:i + chunk], profile_bin(showers.energy[i:i + chunk])
        p = np.stack([ecal.sum(axis=axes[:-1], dtype=np.float64) for axes in AXES], axis=1)  # no channel axis
        p /= p.sum(axis=2, keepdims=True) + 1e-12
        np.add.at(sums, idx, p)
        np.add.at(counts, idx, 1)
    nearest = _nearest_filled(counts)
    return (sums[nearest] / counts[nearest, None, None]).astype(np.float32)


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay after ``step`` updates: warms up as (1 + t) / (10 + t) so early weights are forgotten."""
    return min(decay, (1.0 + step) / (10.0 + step))


class Trainer:
    """The training copies of both networks, their optimizers, the EMA, the position, and one compiled step."""

    def __init__(self, config: TrainConfig, reference: np.ndarray | None = None, spread: np.ndarray | None = None):
        """``reference``: the [bins, 3, 25] mean profiles the profile loss aims at (profile_target geant4-mean);
        ``spread``: the [bins] relative spread of the summed energy the spread loss aims at (spread_weight)."""
        import keras
        import tensorflow as tf

        from gan.model import build_discriminator
        from gan.train_precision import training_copy

        self.tf, self.config = tf, config
        if config.profile_target not in PROFILE_TARGETS:
            raise ValueError(f"profile_target must be one of {PROFILE_TARGETS}, got {config.profile_target!r}")
        if (reference is None) != (config.profile_target == "batch"):
            raise ValueError(f"profile_target {config.profile_target!r} needs reference profiles if and only if "
                             "it is not 'batch'")
        self.reference = None if reference is None else tf.constant(reference, tf.float32)
        if (spread is None) != (not config.spread_weight):
            raise ValueError("spread_weight needs the reference spread if and only if it is not 0")
        self.spread = None if spread is None else tf.constant(spread, tf.float32)
        keras.utils.set_random_seed(config.seed)  # weight initialisation and dropout
        self.generator = training_copy(build_generator(), config.precision)
        self.discriminator = training_copy(build_discriminator(), config.precision)
        self.g_opt = keras.optimizers.RMSprop(config.learning_rate)
        self.d_opt = keras.optimizers.RMSprop(config.learning_rate)
        self.g_opt.build(self.generator.trainable_variables)
        self.d_opt.build(self.discriminator.trainable_variables)
        self.ema = [tf.Variable(v.numpy(), trainable=False, name=f"ema_{i}")
                    for i, v in enumerate(self.generator.weights)]
        self.iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
        self.position = tf.Variable([0, 0], dtype=tf.int64, name="epoch_batch")
        seeds = [v.value for v in self.discriminator.variables if "seed_generator" in v.path]  # dropout's RNG
        self.checkpoint = tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                              g_opt=self.g_opt, d_opt=self.d_opt, ema=self.ema, dropout=seeds,
                                              iteration=self.iteration, position=self.position)
        self.manager = tf.train.CheckpointManager(self.checkpoint, Path(config.run_dir) / "checkpoints", 2)
        b = config.batch_size
        spec = [tf.TensorSpec([b, *SHOWER_SHAPE, 1], tf.float32)] + [tf.TensorSpec([b], tf.float32)] * 5
        self.step = tf.function(self._step, input_signature=spec + [tf.TensorSpec([3, b, LATENT_SIZE], tf.float32)])

    def _loss(self, outputs, label, energy, ecal_sum):
        tf = self.tf
        fake_p, aux, ecal = (tf.reshape(tf.cast(o, tf.float32), [-1]) for o in outputs)
        eps = 1e-7
        p = tf.clip_by_value(fake_p, eps, 1 - eps)
        bce = -tf.reduce_mean(label * tf.math.log(p) + (1 - label) * tf.math.log(1 - p))
        mape_e = 100 * tf.reduce_mean(tf.abs(energy - aux) / tf.maximum(tf.abs(energy), eps))
        mape_s = 100 * tf.reduce_mean(tf.abs(ecal_sum - ecal) / tf.maximum(tf.abs(ecal_sum), eps))
        w = self.config.loss_weights
        return w[0] * bce + w[1] * mape_e + w[2] * mape_s

    def _step(self, real, energy, real_sum, fake_sum, real_label, fake_label, z):
        """Two discriminator steps (real, fake), two generator steps, one EMA update; returns metrics."""
        tf = self.tf
        g, d = self.generator, self.discriminator
        fake = tf.cast(g(z[0] * energy[:, None], training=True), tf.float32)
        d_loss = 0.0
        for images, label, sums in ((real, real_label, real_sum), (fake, fake_label, fake_sum)):
            with tf.GradientTape() as tape:  # CERN: one update on the real batch, one on the fake batch
                loss = self._loss(d(images, training=True), label, energy, sums)
            grads = tape.gradient(loss, d.trainable_variables)
            self.d_opt.apply_gradients(zip(grads, d.trainable_variables, strict=True))
            d_loss += 0.5 * loss
        g_loss = 0.0
        for k in (1, 2):
            with tf.GradientTape() as tape:  # D in training mode (batch statistics), as it is trained
                out = g(z[k] * energy[:, None], training=True)
                loss = self._loss(d(out, training=True), tf.ones_like(energy), energy, fake_sum)
                if self.config.profile_weight:
                    loss += self.config.profile_weight * profile_distance(
                        tf, tf.cast(out, tf.float32), real, energy, self._target_profiles(energy),
                        self.config.profile_groups)
                if self.config.spread_weight:
                    sums = tf.reduce_sum(tf.cast(out, tf.float32), axis=(1, 2, 3, 4))
                    loss += self.config.spread_weight * spread_distance(
                        tf, sums, fake_sum, energy, tf.gather(self.spread, self._bin_index(energy)),
                        self.config.profile_groups)
            grads = tape.gradient(loss, g.trainable_variables)
            self.g_opt.apply_gradients(zip(grads, g.trainable_variables, strict=True))
            g_loss += 0.5 * loss
        decay = tf.minimum(self.config.ema_decay, (1.0 + tf.cast(self.iteration, tf.float32))
                           / (10.0 + tf.cast(self.iteration, tf.float32)))
        for avg, var in zip(self.ema, g.weights, strict=True):
            avg.assign(decay * avg + (1.0 - decay) * tf.cast(var, tf.float32))
        self.iteration.assign_add(1)
        alive = tf.reduce_mean(tf.cast(fake > 0, tf.float32))
        return d_loss, g_loss, tf.reduce_sum(fake) / tf.reduce_sum(real), alive

    def _target_profiles(self, energy):
        """The reference profiles at each event's energy (``energy`` in units of ENERGY_SCALE_GEV), or None."""
        if self.reference is None:
            return None
        return self.tf.gather(self.reference, self._bin_index(energy))

    def _bin_index(self, energy):
        """PROFILE_BIN_GEV bin of each energy (in units of ENERGY_SCALE_GEV), clipped to the first and last."""
        tf = self.tf
        low, _, width = PROFILE_BIN_GEV
        index = tf.cast(tf.floor((energy * ENERGY_SCALE_GEV - low) / width), tf.int32)
        return tf.clip_by_value(index, 0, N_PROFILE_BINS - 1)

    def restore(self, log) -> None:
        """The run's own latest checkpoint, else ``init_from``'s; then this run's learning rate."""
        source = self.manager.latest_checkpoint
        if source is None and self.config.init_from:
            source = self.tf.train.latest_checkpoint(str(Path(self.config.init_from) / "checkpoints"))
            if source is None:
                from gan.outputs import OutputError

                raise OutputError(f"{self.config.init_from}: no checkpoint to start from (init_from)")
            log(f"starting from {source} (init_from)")
        if source is not None:
            self.checkpoint.restore(source).assert_consumed()
        for opt in (self.g_opt, self.d_opt):
            opt.learning_rate = self.config.learning_rate

    def export_generator(self, ema: bool = True):
        """A float32 CERN-layout generator with the EMA (or current) weights, producing GeV."""
        exported = build_generator()
        exported.set_weights([np.asarray(v) for v in (self.ema if ema else self.generator.weights)])
        conv = exported.get_layer("conv3d_4")
        conv.set_weights([w / self.config.cell_scale for w in conv.get_weights()])
        return exported


def _set_threads(n: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised (e.g. in tests): keep its settings
        pass


def _batch(showers, idx, rng, fit, config):
    """The step's inputs for events ``idx``: real cells, energy (x100 GeV), sums, labels, three latent batches."""
    n = len(idx)
    real = showers.ecal[idx][..., None]
    energy_gev = showers.energy[idx]
    real_label, fake_label = np.ones(n, np.float32), np.zeros(n, np.float32)
    flips = rng.random(n) < config.label_flip
    real_label[flips], fake_label[flips] = 0.0, 1.0
    z = rng.standard_normal((3, n, LATENT_SIZE), dtype=np.float32)
    return (real, (energy_gev / ENERGY_SCALE_GEV).astype(np.float32), real.sum(axis=(1, 2, 3, 4)),
            target_sum(fit, energy_gev, config.cell_scale), real_label, fake_label, z)


def evaluate(generator, heldout: data.Showers, seed: int, per_event: int = 1) -> tuple[list[dict], dict]:
    """Per-bin agreement of a (GeV) generator (``per_event`` showers at each held-out event's energy) with the
    held-out Geant4 events, and its verdict."""
    energy = np.tile(heldout.energy, per_event)
    fake = generate(generator, sample_latent(len(energy), seed), energy)
    rows = agreement.compare_bins(fake, energy, heldout.ecal, heldout.energy)
    return rows, agreement.verdict(rows)


def record_evaluation(run_dir: Path, entry: dict, generator, metadata: dict) -> bool:
    """Append ``entry`` to the history; if it beats ``best.json`` (a met target first, then the lower score), save
    the generator as the best."""
    with (run_dir / HISTORY).open("a") as f:
        f.write(json.dumps(entry) + "\n")
    best = read_best(run_dir)
    if best is not None and not _rank(entry) < _rank(best):
        return False
    from gan.weights import save_weights

    save_weights(generator, run_dir / BEST_WEIGHTS, metadata | {"score": entry["score"]})
    from gan.outputs import write_json_atomic

    write_json_atomic(run_dir / BEST_JSON, {k: entry[k] for k in ("iteration", "epoch", "score", "passed", "worst")})
    return True


def _rank(entry: dict) -> tuple[bool, float]:
    return not entry.get("passed", False), entry["score"]


def read_best(run_dir: Path) -> dict | None:
    path = Path(run_dir) / BEST_JSON
    return json.loads(path.read_text()) if path.is_file() else None


def _trim_history(run_dir: Path, iteration: int) -> None:
    """Drop history lines written after the checkpoint being resumed (they will be recomputed)."""
    path = run_dir / HISTORY
    if path.is_file():
        lines = [ln for ln in path.read_text().splitlines() if json.loads(ln)["iteration"] <= iteration]
        path.write_text("".join(ln + "\n" for ln in lines))


def _check_config(run_dir: Path, config: TrainConfig) -> None:
    """Write config.json on the first start; refuse to resume with different training settings."""
    path = run_dir / "config.json"
    now = json.loads(json.dumps(asdict(config)))
    now["data_paths"] = [Path(p).name for p in now["data_paths"]]  # file names: a run resumes from any checkout
    if path.is_file():
        before = json.loads(path.read_text())
        names = {k: [Path(p).name for p in v["data_paths"]] for k, v in (("before", before), ("now", now))}
        defaults = json.loads(json.dumps(asdict(TrainConfig(data_paths=()))))  # fields added after the run began
        changed = sorted(k for k in now if k not in RUN_TIME_FIELDS | {"data_paths"}
                         and before.get(k, defaults[k]) != now[k])
        changed += ["data_paths"] if names["before"] != names["now"] else []  # same files, any folder
        if changed:
            from gan.outputs import OutputError

            raise OutputError(f"{path}: this run was started with other settings ({', '.join(changed)}); "
                             "use another --run-dir or the original settings")
    else:
        path.write_text(json.dumps(now, indent=1) + "\n")


class _StopFlag:
    """Set by SIGTERM/SIGINT so the loop checkpoints and exits cleanly."""

    def __init__(self):
        self.set = False

    def __call__(self, signum, frame):
        self.set = True


def train(config: TrainConfig, log=print) -> Path:
    """Train (or resume) into ``config.run_dir``; return the path of the best EMA generator (GeV, CERN layout)."""
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_config(run_dir, config)
    _set_threads(config.threads)
    showers, heldout = load_training_showers(config), load_heldout(config)
    sums = showers.ecal.sum(axis=(1, 2, 3), dtype=np.float64)
    fit = sampling_fraction_fit(showers.energy, sums / config.cell_scale / showers.energy)
    trainer = Trainer(config, None if config.profile_target == "batch" else mean_profiles(showers),
                      relative_spread(sums, showers.energy, fit, config.cell_scale) if config.spread_weight else None)
    trainer.restore(log)
    _trim_history(run_dir, int(trainer.iteration.numpy()))
    epoch, batch0 = (int(v) for v in trainer.position.numpy())
    n_batches = len(showers) // config.batch_size
    log(f"{len(showers)} training showers ({n_batches} batches of {config.batch_size}), {len(heldout)} held out; "
        f"resuming at epoch {epoch + 1}, batch {batch0}, iteration {int(trainer.iteration.numpy())} "
        f"(learning rate {config.learning_rate:g}, profile weight {config.profile_weight:g}, "
        f"target {config.profile_target}, {config.profile_groups} energy groups, spread weight "
        f"{config.spread_weight:g})")
    stop = _StopFlag()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        _loop(trainer, showers, heldout, fit, epoch, batch0, n_batches, stop, log)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return run_dir / BEST_WEIGHTS


def _loop(trainer, showers, heldout, fit, epoch, batch0, n_batches, stop, log):
    config = trainer.config
    started = last_ckpt = last_log = time.monotonic()
    while epoch < config.epochs:
        order = np.random.default_rng([config.seed, epoch]).permutation(len(showers))
        for b in range(batch0, n_batches):
            idx = np.sort(order[b * config.batch_size:(b + 1) * config.batch_size])
            inputs = _batch(showers, idx, np.random.default_rng([config.seed, epoch, b]), fit, config)
            d_loss, g_loss, ratio, alive = (float(v) for v in trainer.step(*inputs))
            trainer.position.assign([epoch, b + 1] if b + 1 < n_batches else [epoch + 1, 0])
            it = int(trainer.iteration.numpy())
            if it % config.log_every == 0:
                now = time.monotonic()
                log(f"it {it} epoch {epoch + 1} batch {b + 1}/{n_batches}: d {d_loss:.2f} g {g_loss:.2f} "
                    f"fake/real energy {ratio:.3f} cells>0 {alive:.3f}; "
                    f"{(now - last_log) / config.log_every:.2f} s/it", flush=True)
                last_log = now
            if it % config.eval_every == 0:
                _evaluate_and_record(trainer, heldout, it, epoch + (b + 1) / n_batches, log)
            out_of_time = config.max_minutes is not None and time.monotonic() - started > 60 * config.max_minutes
            if stop.set or out_of_time or time.monotonic() - last_ckpt > 60 * config.checkpoint_minutes:
                trainer.manager.save()
                last_ckpt = time.monotonic()
                if stop.set or out_of_time:
                    log(f"stopped at iteration {it} (epoch {epoch + 1}, batch {b + 1}/{n_batches}), checkpointed;"
                        " run the same command again to resume", flush=True)
                    return
        epoch, batch0 = epoch + 1, 0
    trainer.manager.save()
    log(f"finished {config.epochs} epochs", flush=True)


def _evaluate_and_record(trainer, heldout, iteration, epoch, log):
    config, run_dir = trainer.config, Path(trainer.config.run_dir)
    t0 = time.monotonic()
    generator = trainer.export_generator(ema=True)
    rows, result = evaluate(generator, heldout, config.seed, config.eval_per_event)
    entry = {"iteration": iteration, "epoch": round(epoch, 4), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
             **result, "bins": rows}
    meta = {"model": "3dgan-generator", "weights": "ema", "iteration": iteration, "epoch": round(epoch, 4),
            "data": [Path(p).name for p in config.data_paths], "holdout_events": config.holdout_events,
            "recipe": f"gan.train ({config.precision}, cells x{config.cell_scale:g}, EMA {config.ema_decay:g}, "
                      f"lr {config.learning_rate:g}, profile weight {config.profile_weight:g}, target "
                      f"{config.profile_target}, {config.profile_groups} groups, "
                      f"spread weight {config.spread_weight:g})"}
    best = record_evaluation(run_dir, entry, generator, meta)
    log(f"evaluation at iteration {iteration} ({time.monotonic() - t0:.0f} s): score {result['score']:.3f}"
        f"{' (new best)' if best else ''}\n{agreement.format_table(rows, result)}", flush=True)
