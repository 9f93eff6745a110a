"""``tflite-dynamic``, ``tflite-fp16``, ``tflite-int8``: the generator converted by TensorFlow Lite.

Converted with ``tf.lite.TFLiteConverter.from_keras_model`` (variables frozen into the flatbuffer) and run with
the LiteRT interpreter (``ai_edge_litert``; ``tf.lite.Interpreter`` only if LiteRT is missing). Input and output
stay float32 in all three, so ``generate`` is the FP32 API. Saved as :data:`MODEL_FILE` plus ``variant.json``.

What TFLite really does with this model (read back from the interpreter by :meth:`TFLiteVariant.op_report`):

- ``tflite-dynamic``: only ``dense_1`` gets int8 weights; CONV_3D keeps float32 weights.
- ``tflite-fp16``: float16 weights, dequantized to float32 before compute: smaller file, float32 arithmetic.
- ``tflite-int8``: CONV_3D has no int8 kernel in TFLite, so every convolution runs in float32 between a
  DEQUANTIZE and a QUANTIZE; only the dense layer and the elementwise/upsampling ops run in int8. On CERN's 2017
  weights (TF 2.21) this is far off: the int8 step of the last activations (~6 MeV) is above most cell
  energies, so quantization noise lights up ~29 % of the cells instead of ~8 % and the shower energy grows
  about 12-fold at 100-500 GeV.
- CONV_3D's im2col buffer is about 25 M floats (100 MB) per shower in ``conv3d_2``; from 86 showers on it passes
  the 32-bit element limit and the batch fails to prepare. :data:`BATCH_SIZE` keeps that memory within
  :data:`IM2COL_BUDGET_BYTES` (a larger batch is run as several, said in the op report), and a batch
  that fails to prepare (at ``allocate_tensors``, or at ``invoke`` where CONV_3D's weights are dequantized at run
  time, as in ``tflite-fp16``) is halved until one works (remembered, and noted in the op report).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path

import numpy as np

from gan.model import LATENT_SIZE, SHOWER_SHAPE, latent_input
from quant.base import OpPrecision, OpReport, VariantError, VariantUnavailable, read_variant_file, write_variant_file
from quant.registry import Family, VariantSpec, register, register_family

MODEL_FILE = "generator.tflite"
IM2COL_BYTES_PER_SHOWER = 200 * 2**20  # TFLite's CONV_3D im2col and activations: ~0.2 GB per shower in a batch
IM2COL_BUDGET_BYTES = 2**30  # the most one invoke may take, so the interpreter stays near 1 GB at any batch
BATCH_SIZE = max(1, IM2COL_BUDGET_BYTES // IM2COL_BYTES_PER_SHOWER)  # showers per invoke (5)
DESCRIPTIONS = {
    "tflite-dynamic": "TensorFlow Lite dynamic-range quantization: int8 weights, float activations",
    "tflite-fp16": "TensorFlow Lite float16 weights (float32 compute on CPU)",
    "tflite-int8": "TensorFlow Lite full-integer post-training quantization, float input/output",
}
SOURCE = "LiteRT interpreter: op list and tensor dtypes of the converted flatbuffer"
PRECISION = {"int8": "int8", "float16": "fp16", "float32": "fp32"}  # tensor dtype -> OpReport precision
CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")
_THREADS: dict[str, int | None] = {"num_threads": None}  # set_threads(): interpreters made after it use it


def set_threads(threads: int) -> str:
    """Interpreters created from now on run ``threads`` threads (LiteRT's num_threads)."""
    _THREADS["num_threads"] = threads
    return f"num_threads {threads} (interpreters created from now on)"


TFLITE = register_family(Family(
    "tflite", ("ai_edge_litert",), set_threads,
    no_per_layer="TensorFlow Lite converts the whole model at once (no per-layer precision control)"))


def interpreter_class(name: str = "tflite"):
    """LiteRT's Interpreter, else TensorFlow's; VariantUnavailable (for variant ``name``) if neither is here."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            import tensorflow as tf
        except ImportError:
            raise VariantUnavailable(name, "needs ai-edge-litert (or tensorflow) for the TFLite interpreter; "
                                           "neither is installed") from None
        return tf.lite.Interpreter
    return Interpreter


def check(name: str) -> None:
    """VariantUnavailable unless a TFLite interpreter can be imported."""
    interpreter_class(name)


def _representative_inputs(calibration) -> np.ndarray:
    """The calibration's generator inputs (N, 200), validated: VariantError if empty, misshapen or not finite."""
    if calibration is None:
        raise VariantError("tflite-int8 needs calibration data (a quant.calibration.Calibration)")
    batches = [np.asarray(b, dtype=np.float32) for b in calibration.batches()]
    if not batches or sum(len(b) for b in batches) == 0:
        raise VariantError("calibration data is empty (0 samples)")
    if any(b.ndim != 2 or b.shape[1] != LATENT_SIZE for b in batches):
        raise VariantError(f"calibration inputs must have shape (N, {LATENT_SIZE}), got "
                           f"{[b.shape for b in batches]}")
    inputs = np.concatenate(batches)
    if not np.all(np.isfinite(inputs)):
        raise VariantError("calibration data contains NaN or inf")
    return inputs


def convert(generator, name: str, calibration=None) -> bytes:
    """The flatbuffer of ``generator`` converted as variant ``name``."""
    try:
        import tensorflow as tf
    except ImportError:
        raise VariantUnavailable(name, "converting needs TensorFlow (tf.lite.TFLiteConverter)") from None
    inputs = _representative_inputs(calibration) if name == "tflite-int8" else None
    converter = tf.lite.TFLiteConverter.from_keras_model(generator)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if name == "tflite-fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif name == "tflite-int8":
        converter.representative_dataset = lambda: ([x[None]] for x in inputs)  # one shower: small im2col
        # int8 where TFLite has a kernel, float builtins otherwise (CONV_3D); input/output stay float32
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints its export summary
        return converter.convert()


class TFLiteVariant:
    """A converted flatbuffer and its interpreter, resized per batch."""

    def __init__(self, name: str, model: bytes, layers=(), batch_size: int = BATCH_SIZE):
        try:
            self._interpreter = interpreter_class(name)(model_content=model, num_threads=_THREADS["num_threads"])
        except ValueError as exc:
            raise VariantError(f"{name}: not a readable TFLite model ({exc})") from None
        self.name, self._model, self._layers = name, model, sorted(layers, key=len, reverse=True)
        self.batch_size = batch_size
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._prepared = None  # batch size the interpreter is allocated for
        self._batch_failure = ""
        self._largest_request = 0  # most showers asked of one generate() call

    def _run(self, chunk: np.ndarray) -> np.ndarray | None:
        """Showers for one batch, or None after halving :attr:`batch_size` if TFLite cannot run this many."""
        n = len(chunk)
        try:
            if n != self._prepared:
                self._prepared = None
                self._interpreter.resize_tensor_input(self._input, [n, LATENT_SIZE])
                self._interpreter.allocate_tensors()
                self._prepared = n
            self._interpreter.set_tensor(self._input, chunk)
            self._interpreter.invoke()  # a CONV_3D with dequantized (fp16) weights prepares only here
        except RuntimeError as exc:
            if n == 1:
                raise
            self._prepared, self.batch_size = None, n // 2
            self._batch_failure = self._batch_failure or f"TFLite cannot prepare a batch of {n} ({exc})"
            return None
        return self._interpreter.get_tensor(self._output)[..., 0].astype(np.float32)

    def generate(self, z: np.ndarray, energy_gev: np.ndarray) -> np.ndarray:
        """Showers (N, 25, 25, 25) float32 in GeV, in batches of at most :attr:`batch_size`."""
        x, out, done = latent_input(z, energy_gev), [], 0
        self._largest_request = max(self._largest_request, len(x))
        while done < len(x):
            showers = self._run(x[done:done + max(1, self.batch_size)])
            if showers is not None:
                out.append(showers)
                done += len(showers)
        return np.concatenate(out) if out else np.zeros((0,) + SHOWER_SHAPE, np.float32)

    def save(self, directory) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_bytes(self._model)
        write_variant_file(directory, self.name, model=MODEL_FILE, layers=self._layers)
        return directory

    def size_bytes(self) -> int:
        """Bytes of the flatbuffer."""
        return len(self._model)

    def _layer(self, tensor_name: str) -> str:
        """The Keras layer a tensor belongs to ('generator_1/conv3d_2_1/convolution' -> 'conv3d_2'), or ''."""
        for part in tensor_name.split("/"):
            for layer in self._layers:  # longest first
                if part == layer or part.startswith(layer + "_"):
                    return layer
        return ""

    def op_report(self) -> OpReport:
        """Each compute op in graph order, repeats merged, with the precision its tensors have."""
        ops = op_precisions(self._interpreter, self._layer)
        rows = [OpPrecision(op, precision, ", ".join(filter(None, [note, f"x{n}" if n > 1 else ""])))
                for (op, precision, note), n in Counter(ops).items()]  # first-seen order, repeats merged
        notes = [f"{kind} has no int8 kernel in TFLite: runs in float (DEQUANTIZE before, QUANTIZE after)"
                 for kind in dict.fromkeys(label.split(" ")[0] for label, _, note in ops if "no int8" in note)]
        if any("dequantized to fp32" in note for _, _, note in ops):
            notes.append("float16 weights are dequantized to float32 before compute: half the size, fp32 math")
        if self._batch_failure:
            notes.append(f"{self._batch_failure}; generate() uses batches of {self.batch_size}")
        elif self._largest_request > self.batch_size:
            notes.append(f"runs batches of at most {self.batch_size} showers (a batch of {self._largest_request} as "
                         f"several): CONV_3D's im2col takes ~{IM2COL_BYTES_PER_SHOWER / 2**30:.1f} GB per shower, "
                         f"bounded to {IM2COL_BUDGET_BYTES / 2**30:g} GB")
        return OpReport(self.name, rows, SOURCE, notes)


def _note(precision: str, inputs) -> str:
    """What an op's (kind, dtype) inputs say: the dtype of its weights, and float compute amid int8 data."""
    weights = next((d for kind, d in inputs if kind == "weights"), None)  # the first constant, not the bias
    notes = []
    if weights:
        notes.append(f"{PRECISION[weights]} weights" + (", dequantized to fp32" if weights == "float16" else ""))
    if precision != "int8" and ("activation", "int8") in inputs:
        notes.append("no int8 kernel: runs in float between DEQUANTIZE and QUANTIZE")
    elif precision != "int8" and weights == "int8":
        notes.append("float activations")
    return ", ".join(notes)


def op_precisions(interpreter, layer_of) -> list[tuple[str, str, str]]:
    """(op label, precision, note) for every op that outputs float or int8 data, in graph order.

    Precision is that of the op's output tensor; the note gives the dtype of its weights (constant inputs, seen
    through a DEQUANTIZE) and says when an int8 activation is dequantized for it. Skipped: shape arithmetic
    (int32 only), delegate nodes, and the QUANTIZE/DEQUANTIZE conversions themselves.
    """
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    details = [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
    producer = {out: op for op in details for out in op["outputs"]}
    graph_inputs = {t["index"] for t in interpreter.get_input_details()}

    def dtype(index):
        return np.dtype(tensors[index]["dtype"]).name

    def origin(index):
        """('weights' or 'activation', dtype before any DEQUANTIZE) of an op input."""
        op = producer.get(index)
        if op is not None and op["op_name"] == "DEQUANTIZE":
            return origin(op["inputs"][0])
        return ("weights" if op is None and index not in graph_inputs else "activation"), dtype(index)

    result = []
    for op in details:
        outputs = [i for i in op["outputs"] if dtype(i) in PRECISION]
        if not outputs or op["op_name"] in CONVERSION_OPS:
            continue
        precision = PRECISION[dtype(outputs[0])]
        inputs = [origin(i) for i in op["inputs"] if i >= 0 and dtype(i) in PRECISION]
        layer = layer_of(tensors[outputs[0]]["name"])
        result.append((f"{op['op_name']} ({layer})" if layer else op["op_name"], precision, _note(precision, inputs)))
    return result


def build(name: str, generator, calibration=None) -> TFLiteVariant:
    return TFLiteVariant(name, convert(generator, name, calibration), [layer.name for layer in generator.layers])


def load(directory) -> TFLiteVariant:
    directory = Path(directory)
    saved = read_variant_file(directory)
    name, path = saved.get("variant"), directory / saved.get("model", MODEL_FILE)
    if name not in DESCRIPTIONS:
        raise VariantError(f"{directory}: holds variant '{name}', not a TFLite variant")
    if not path.is_file():
        raise VariantError(f"{directory}: {path.name} is missing")
    return TFLiteVariant(name, path.read_bytes(), saved.get("layers", ()))


def _register(name: str) -> None:
    register(VariantSpec(name, DESCRIPTIONS[name], TFLITE,
                         build=lambda generator, calibration=None, context=None: build(name, generator, calibration),
                         load=load, check=lambda: check(name)))


for _name in DESCRIPTIONS:
    _register(_name)
