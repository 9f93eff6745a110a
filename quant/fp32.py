"""``fp32``: the reference, the Keras generator run as one ``tf.function`` (oneDNN float32 kernels).

:class:`KerasVariant` is shared with :mod:`quant.bf16`: a private copy of the generator, each layer rebuilt with
its own Keras dtype policy, traced once for any batch size. Saved as the project weight file (float32 master
weights, :data:`WEIGHTS_FILE`) plus ``variant.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from gan.model import LATENT_SIZE, SHOWER_SHAPE, latent_input
from quant.base import OpPrecision, OpReport, VariantError, read_variant_file, write_variant_file
from quant.registry import VariantSpec, register

WEIGHTS_FILE = "generator.h5"
BATCH_SIZE = 128  # showers per call of the traced graph
PRECISION = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # Keras dtype -> OpReport precision


def clone_generator(generator, policy_for: Callable[[str], str]):
    """A copy of ``generator`` whose layer ``name`` has dtype policy ``policy_for(name)``; weights copied.

    The original model and the global Keras dtype policy are left untouched.
    """
    import keras

    def rebuild(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": policy_for(layer.name)})

    clone = keras.models.clone_model(generator, clone_function=rebuild)
    clone.set_weights(generator.get_weights())
    return clone


class KerasVariant:
    """A Keras generator with per-layer dtype policies, called through one traced ``tf.function``."""

    def __init__(self, name: str, model, source: str, notes=()):
        import tensorflow as tf

        self.name, self.model, self._source, self._notes = name, model, source, list(notes)
        spec = tf.TensorSpec([None, LATENT_SIZE], tf.float32)
        self._run = tf.function(lambda x: tf.cast(model(x, training=False)[..., 0], tf.float32),
                                input_signature=[spec])

    def generate(self, z: np.ndarray, energy_gev: np.ndarray) -> np.ndarray:
        """Showers (N, 25, 25, 25) float32 in GeV, computed in batches of :data:`BATCH_SIZE`."""
        x = latent_input(z, energy_gev)
        out = [self._run(x[i:i + BATCH_SIZE]).numpy() for i in range(0, len(x), BATCH_SIZE)]
        return np.concatenate(out) if out else np.zeros((0,) + SHOWER_SHAPE, np.float32)

    def save(self, directory) -> Path:
        from gan.weights import save_weights

        directory = Path(directory)
        save_weights(self.model, directory / WEIGHTS_FILE, {"variant": self.name})
        write_variant_file(directory, self.name, weights=WEIGHTS_FILE)
        return directory

    def size_bytes(self) -> int:
        """Bytes of the weights as saved: every parameter as a float32 master copy (HDF5 overhead excluded)."""
        return sum(4 * int(np.prod(w.shape)) for w in self.model.weights)

    def op_report(self) -> OpReport:
        """Each weighted layer with the compute dtype of its Keras dtype policy."""
        rows = [OpPrecision(layer.name, PRECISION.get(layer.compute_dtype, layer.compute_dtype))
                for layer in self.model.layers if layer.weights]
        return OpReport(self.name, rows, self._source, list(self._notes))


def load_generator_from(directory, name: str):
    """The float32 Keras generator saved in ``directory`` by a variant called ``name``."""
    from gan.pretrained import load_generator

    directory = Path(directory)
    saved = read_variant_file(directory).get("variant")
    if saved != name:
        raise VariantError(f"{directory}: holds variant '{saved}', not '{name}'")
    return load_generator(str(directory / WEIGHTS_FILE))


def build(generator, calibration=None) -> KerasVariant:
    """The FP32 reference; ``calibration`` is not needed."""
    model = clone_generator(generator, lambda name: "float32")
    return KerasVariant("fp32", model, "Keras graph (all layers float32)")


def load(directory) -> KerasVariant:
    return build(load_generator_from(directory, "fp32"))


register(VariantSpec("fp32", "reference: Keras generator in float32 as one tf.function (oneDNN)", build, load))
