"""A toy backend: what adding a backend takes, and the proof that the contract test covers it without a copy.

One module: a family (its runtime packages, how to pin N threads) and its variants, each with a build
``(generator, calibration, context)`` and a load ``(directory)``. Then its registration: the module's import name
in :data:`quant.registry.VARIANT_MODULES` (in tree) or in ``$CALOGAN_VARIANT_MODULES`` (out of tree, as
``tests/test_variant_contract.py`` registers this one). Here the variant is the FP32 reference under another
name, in a family of its own.
"""

from __future__ import annotations

from quant import fp32
from quant.registry import Family, VariantSpec, register, register_family

NAME = "toy-fp32"
THREADS: dict[str, int] = {}


def set_threads(threads: int) -> str:
    THREADS["threads"] = threads
    return f"toy runtime: {threads} threads"


TOY = register_family(Family("toy", ("numpy",), set_threads, no_per_layer="the toy has no per-layer control"))


def build(generator, calibration=None, context=None) -> fp32.KerasVariant:
    model = fp32.clone_generator(generator, lambda layer: "float32")
    return fp32.KerasVariant(NAME, model, "toy: the Keras graph in float32")


def load(directory) -> fp32.KerasVariant:
    return build(fp32.load_generator_from(directory, NAME))


register(VariantSpec(NAME, "toy backend: the FP32 reference in a family of its own (tests only)", TOY, build, load))
