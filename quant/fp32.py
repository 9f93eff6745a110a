"""``fp32``: the reference, the Keras generator run as one ``tf.function`` (oneDNN float32 kernels).

:class:`KerasVariant` is shared with :mod:`quant.bf16`: a private copy of the generator, each layer rebuilt with
its own Keras dtype policy, traced once for any batch size. Saved as the project weight file (float32 master
weights, :data:`WEIGHTS_FILE`) plus ``variant.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gan.model import LATENT_SIZE, SHOWER_SHAPE, latent_input
from quant.base import OpPrecision, OpReport, VariantError, read_variant_file, write_variant_file
from quant.registry import Family, VariantSpec, register, register_family

if TYPE_CHECKING:
    from collections.abc import Callable

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


def set_tensorflow_threads(threads: int) -> str:
    """Ask TensorFlow for ``threads`` intra-op and inter-op threads; say what it got (TF fixes them at its first
    op: a process that already ran TensorFlow keeps its own)."""
    try:
        import tensorflow as tf
    except ImportError:
        return "not installed"
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TF's runtime already started in this process
        pass
    intra, inter = (tf.config.threading.get_intra_op_parallelism_threads(),
                    tf.config.threading.get_inter_op_parallelism_threads())
    if intra == threads == inter:
        return f"intra-op {intra}, inter-op {inter}"
    return (f"intra-op {intra or 'default'}, inter-op {inter or 'default'}: NOT the requested {threads} "
            "(TensorFlow was initialized before)")


# the Keras per-layer builder, named in the sensitivity cache key (change it when the build changes)
PER_LAYER_BUILDER = "quant.fp32.clone_generator, glue follows (1)"


def build_per_layer(generator, calibration, assignment):
    """A Keras generator with bf16 or fp32 per layer (``assignment``; the rest follows
    :func:`quant.sensitivity.full_assignment`), output float32: the sensitivity sweep's Keras runtime."""
    from quant.base import VariantUnavailable
    from quant.sensitivity import FP32, MIXED_BF16, MIXED_NAME, full_assignment

    bad = sorted({p for p in assignment.values() if p not in ("bf16", FP32)})
    if bad:
        raise VariantUnavailable("keras", f"per-layer {', '.join(bad)} is not available in Keras (bf16 only)")
    full = full_assignment(generator, assignment)
    last = generator.layers[-1].name  # float32 output, as the bf16 variants
    model = clone_generator(generator, lambda name: MIXED_BF16 if full.get(name) == "bf16" and name != last
                            else "float32")
    return KerasVariant(MIXED_NAME, model, "Keras dtype policy per layer")


def per_layer_runtime():
    """Per-layer bf16 through Keras dtype policies (needs bf16 instructions)."""
    from quant.cpu import BF16_FLAGS, require_any
    from quant.sensitivity import Runtime, require_modules

    require_modules("keras", "tensorflow")
    require_any("keras bf16", BF16_FLAGS, "AMX-BF16 or AVX512-BF16")
    return Runtime("keras", ("bf16",), build_per_layer, builder=PER_LAYER_BUILDER)


KERAS = register_family(Family("keras", ("tensorflow", "keras"), set_tensorflow_threads, per_layer_runtime))


def build(generator, calibration=None, context=None) -> KerasVariant:
    """The FP32 reference; ``calibration`` and ``context`` are not needed."""
    model = clone_generator(generator, lambda name: "float32")
    return KerasVariant("fp32", model, "Keras graph (all layers float32)")


def load(directory) -> KerasVariant:
    return build(load_generator_from(directory, "fp32"))


register(VariantSpec("fp32", "reference: Keras generator in float32 as one tf.function (oneDNN)", KERAS, build, load))
