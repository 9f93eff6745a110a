"""``bf16`` and ``bf16-full``: Keras ``mixed_bfloat16`` (bfloat16 compute, float32 master weights).

``bf16`` keeps the first convolution ``conv3d_1`` in float32: on TensorFlow 2.21 with AMX, oneDNN's bfloat16
``conv3d`` with the 6x6x8 kernel on the 7x7x8 input and SAME padding is wrong (relative L2 error ~1.1, shower
energy off by about -24 %), while every other layer is fine in bfloat16. ``bf16-full`` runs every layer in
bfloat16 (correct on TF 2.15; kept so that validation shows where it holds). The last layer ``re_lu_1`` is
float32 in both, so the output is float32 (ReLU of a bfloat16 value is exact, only the cast moves).
"""

from __future__ import annotations

from quant.cpu import AMX_BF16, BF16_FLAGS, has_any, require_any
from quant.fp32 import KERAS, KerasVariant, clone_generator, load_generator_from
from quant.registry import VariantSpec, register

MIXED = "mixed_bfloat16"
FLOAT32_LAYERS = {"bf16": ("conv3d_1", "re_lu_1"), "bf16-full": ("re_lu_1",)}
DESCRIPTIONS = {
    "bf16": "Keras mixed_bfloat16, first convolution conv3d_1 in float32 (AMX / AVX512-BF16)",
    "bf16-full": "Keras mixed_bfloat16 in every layer (wrong conv3d_1 on TF 2.21 + AMX; for validation)",
}
SOURCE = "Keras dtype policy"


def _notes() -> list[str]:
    engine = ("CPU has AMX-BF16: oneDNN runs the bfloat16 convolutions on AMX" if has_any(AMX_BF16)
              else "CPU has AVX512-BF16 but no AMX: bfloat16 kernels run on AVX-512")
    return [engine, "precisions are the Keras layers' compute dtypes, not a oneDNN log (ONEDNN_VERBOSE=1 "
                    "shows the kernels); batch normalization normalizes in float32 inside Keras"]


def _build(name: str, generator) -> KerasVariant:
    keep = FLOAT32_LAYERS[name]
    model = clone_generator(generator, lambda layer: "float32" if layer in keep else MIXED)
    return KerasVariant(name, model, SOURCE, _notes())


def _register(name: str) -> None:
    register(VariantSpec(
        name, DESCRIPTIONS[name], KERAS,
        build=lambda generator, calibration=None, context=None: _build(name, generator),
        load=lambda directory: _build(name, load_generator_from(directory, name)),
        check=lambda: require_any(name, BF16_FLAGS, "AMX-BF16 or AVX512-BF16")))


for _name in FLOAT32_LAYERS:
    _register(_name)
