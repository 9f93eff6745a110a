"""The CERN energy-conditioned 3DGAN ("EcalEnergyGan", 2017), layer for layer.

Builds with Keras 3 (TensorFlow 2.21) and with tf.keras 2.15 (the Intel Extension stack): only layers and
arguments common to both are used. Layer names follow CERN's Keras 2.0.4 file (``dense_1``, ``conv3d_1``, ...)
so weights map by name.

Generator input: ``z * E / 100`` with ``z ~ N(0, 1)`` of size ``LATENT_SIZE`` and E the primary energy (GeV).
Output: cell energies in GeV, shape (N, 25, 25, 25) after :func:`generate` drops the channel axis.
"""

from __future__ import annotations

import numpy as np

LATENT_SIZE = 200
SHOWER_SHAPE = (25, 25, 25)
ENERGY_SCALE_GEV = 100.0  # the generator and the discriminator's energy head work in units of 100 GeV
BN_EPSILON = 1e-3  # Keras 2.0.4 BatchNormalization default, used by CERN's weights
LEAKY_SLOPE = 0.3  # Keras 2 LeakyReLU default


def _keras():
    import keras  # Keras 3 with TF 2.21; Keras 2.15 (tf.keras) on the legacy Intel stack

    return keras


def _leaky_relu(keras, name):
    try:  # Keras 3 spells the slope negative_slope
        return keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=name)
    except TypeError:
        return keras.layers.LeakyReLU(alpha=LEAKY_SLOPE, name=name)


def build_generator(name: str = "generator"):
    """The 3DGAN generator: Dense -> 4 Conv3D with upsampling, 872,948 parameters."""
    keras = _keras()
    L = keras.layers
    z = keras.Input(shape=(LATENT_SIZE,), name="latent")
    x = L.Dense(7 * 7 * 8 * 8, name="dense_1")(z)
    x = L.Reshape((7, 7, 8, 8), name="reshape_1")(x)
    x = L.Conv3D(64, (6, 6, 8), padding="same", kernel_initializer="he_uniform", name="conv3d_1")(x)
    x = _leaky_relu(keras, "leaky_re_lu_1")(x)
    x = L.BatchNormalization(epsilon=BN_EPSILON, name="batch_normalization_1")(x)
    x = L.UpSampling3D(size=(2, 2, 2), name="up_sampling3d_1")(x)
    x = L.ZeroPadding3D(((2, 2), (2, 2), (0, 0)), name="zero_padding3d_1")(x)
    x = L.Conv3D(6, (6, 5, 8), kernel_initializer="he_uniform", name="conv3d_2")(x)
    x = _leaky_relu(keras, "leaky_re_lu_2")(x)
    x = L.BatchNormalization(epsilon=BN_EPSILON, name="batch_normalization_2")(x)
    x = L.UpSampling3D(size=(2, 2, 3), name="up_sampling3d_2")(x)
    x = L.ZeroPadding3D(((1, 1), (0, 0), (3, 3)), name="zero_padding3d_2")(x)
    x = L.Conv3D(6, (3, 3, 8), kernel_initializer="he_uniform", name="conv3d_3")(x)
    x = _leaky_relu(keras, "leaky_re_lu_3")(x)
    x = L.Conv3D(1, (2, 2, 2), use_bias=False, kernel_initializer="glorot_normal", name="conv3d_4")(x)
    x = L.ReLU(name="re_lu_1")(x)
    return keras.Model(z, x, name=name)


def _disc_block(keras, x, pad, index, batchnorm=True):
    L = keras.layers
    if pad:
        x = L.ZeroPadding3D(pad, name=f"d_pad_{index}")(x)
    x = L.Conv3D(8 if index > 1 else 32, (5, 5, 5), padding="valid" if pad else "same", name=f"d_conv3d_{index}")(x)
    x = _leaky_relu(keras, f"d_leaky_{index}")(x)
    if batchnorm:
        x = L.BatchNormalization(epsilon=BN_EPSILON, name=f"d_bn_{index}")(x)
    return L.Dropout(0.2, name=f"d_dropout_{index}")(x)


def build_discriminator(name: str = "discriminator"):
    """The 3DGAN discriminator with its three heads: real/fake, primary energy (x100 GeV), summed cell energy."""
    keras = _keras()
    L = keras.layers
    image = keras.Input(shape=SHOWER_SHAPE + (1,), name="shower")
    x = _disc_block(keras, image, None, 1, batchnorm=False)
    x = _disc_block(keras, x, 2, 2)
    x = _disc_block(keras, x, 2, 3)
    x = _disc_block(keras, x, 1, 4)
    x = L.AveragePooling3D((2, 2, 2), name="d_avgpool")(x)
    x = L.Flatten(name="d_flatten")(x)
    fake = L.Dense(1, activation="sigmoid", name="generation")(x)
    aux = L.Dense(1, activation="linear", name="auxiliary")(x)
    ecal = L.Lambda(lambda t: keras.ops.sum(t, axis=(1, 2, 3)) if hasattr(keras, "ops")
                    else keras.backend.sum(t, axis=(1, 2, 3)), name="ecal_sum")(image)
    return keras.Model(image, [fake, aux, ecal], name=name)


def latent_input(z: np.ndarray, energy_gev: np.ndarray) -> np.ndarray:
    """The generator's input: latent vectors scaled by E / 100 GeV."""
    z = np.asarray(z, dtype=np.float32)
    energy = np.asarray(energy_gev, dtype=np.float32).reshape(-1, 1)
    if z.ndim != 2 or z.shape[1] != LATENT_SIZE or len(z) != len(energy):
        raise ValueError(f"z must be (N, {LATENT_SIZE}) with one energy per row; got z {z.shape}, "
                         f"energy {energy.shape[:1]}")
    return z * (energy / ENERGY_SCALE_GEV)


def sample_latent(n: int, seed: int | None = None) -> np.ndarray:
    """z ~ N(0, 1), shape (n, LATENT_SIZE), float32, reproducible for a seed."""
    return np.random.default_rng(seed).standard_normal((n, LATENT_SIZE), dtype=np.float32)


def generate(generator, z: np.ndarray, energy_gev: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Showers (N, 25, 25, 25) in GeV for latent vectors ``z`` and primary energies (GeV), in batches."""
    x = latent_input(z, energy_gev)
    out = [np.asarray(generator(x[i:i + batch_size], training=False))[..., 0]
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0,) + SHOWER_SHAPE, np.float32)
