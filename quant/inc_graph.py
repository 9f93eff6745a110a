"""GraphDef helpers for :mod:`quant.inc`: freeze the Keras generator, run a GraphDef, read what it computes in.

Freezing rewrites each ``Pad`` as the equivalent ``PadV2`` (constant 0). On TensorFlow 2.21 with oneDNN, Grappler's
remapper fuses ``Pad -> Conv3D -> BiasAdd -> LeakyRelu`` (zero_padding3d_1 into conv3d_2) of a *frozen* graph into
one kernel that computes wrong values (+180 % shower energy on a seeded random generator); the Keras model, whose
weights are variables, is not fused that way. ``PadV2`` matches neither that fusion nor INC's own
``FusePadWithConv2DOptimizer`` (which folds ``Pad`` into the convolution as ``padding="EXPLICIT"``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from gan.model import LATENT_SIZE
from quant.base import OpPrecision

INPUT_NAME = "latent"
COMPUTE_OPS = ("Conv3D", "MatMul")  # the Keras Dense / Conv3D layers in an fp32 graph
WEIGHTED_LAYERS = ("Dense", "Conv3D")
QDQ_OPS = ("QuantizeV2", "Dequantize")


def freeze(generator):
    """(GraphDef, input tensor name, output tensor name) of ``generator`` with constants and ``PadV2``."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, LATENT_SIZE], tf.float32, name=INPUT_NAME)
    function = tf.function(lambda x: generator(x, training=False), input_signature=[spec])
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    return pad_as_padv2(frozen.graph.as_graph_def()), frozen.inputs[0].name, frozen.outputs[0].name


def pad_as_padv2(graph_def):
    """A copy of ``graph_def`` with every ``Pad`` replaced by ``PadV2`` padding with 0 (same values)."""
    import tensorflow as tf

    out = type(graph_def)()
    out.CopyFrom(graph_def)
    for node in [n for n in out.node if n.op == "Pad"]:
        zero = out.node.add(name=f"{node.name}/constant_values", op="Const")
        zero.attr["dtype"].type = node.attr["T"].type
        zero.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.zeros((), np.float32)))
        node.op = "PadV2"
        node.input.append(zero.name)
    return out


def graph_function(graph_def, input_name: str, output_name: str):
    """A concrete TF function computing ``output_name`` from ``input_name`` of ``graph_def``."""
    import tensorflow as tf

    def imports():
        tf.compat.v1.import_graph_def(graph_def, name="")

    return tf.compat.v1.wrap_function(imports, []).prune(input_name, output_name)


def weighted_layers(generator) -> list[str]:
    """Names of the Dense and Conv3D layers of a Keras generator, in model order."""
    return [layer.name for layer in generator.layers if type(layer).__name__ in WEIGHTED_LAYERS]


def layer_of(node_name: str, layers) -> str:
    """The Keras layer a node belongs to ('generator_1/conv3d_2_1/convolution' -> 'conv3d_2'), or ''."""
    for part in node_name.split("/"):
        for layer in sorted(layers, key=len, reverse=True):
            if part == layer or (part.startswith(layer + "_") and part[len(layer) + 1:].isdigit()):
                return layer
    return ""


def compute_nodes(graph_def, layers) -> dict[str, list[str]]:
    """Layer -> names of its fp32 Conv3D/MatMul nodes (what INC's per-op configuration addresses)."""
    found: dict[str, list[str]] = {}
    for node in graph_def.node:
        if node.op in COMPUTE_OPS and layer_of(node.name, layers):
            found.setdefault(layer_of(node.name, layers), []).append(node.name)
    return found


def _is_quantized(node) -> bool:
    return "Quantized" in node.op


def _fed_by_dequantize(node, nodes) -> bool:
    """True for an fp32 compute op whose data and weights both come from Dequantize (INC's ITEX Q/DQ format)."""
    producers = [nodes.get(name.lstrip("^").split(":")[0]) for name in node.input[:2]]
    return len(producers) == 2 and all(p is not None and p.op == "Dequantize" for p in producers)


def _weight_granularity(node, nodes) -> str:
    """'per-channel' or 'per-tensor': the size of the weight range constant (``<weight>_min``) feeding ``node``."""
    import tensorflow as tf

    inputs = [nodes.get(name.lstrip("^").split(":")[0]) for name in node.input]
    inputs += [nodes.get(name.split(":")[0]) for n in inputs if n is not None and n.op == "Dequantize"
               for name in n.input]
    ranges = [n for n in inputs if n is not None and n.name.endswith("_min") and "value" in n.attr]
    sizes = [tf.make_ndarray(n.attr["value"].tensor).size for n in ranges]
    return "per-channel" if any(size > 1 for size in sizes) else "per-tensor"


def _is_bfloat16(node) -> bool:
    import tensorflow as tf

    return node.attr["T"].type == tf.bfloat16.as_datatype_enum


def op_precisions(graph_def, layers) -> list[OpPrecision]:
    """One row per compute node, in graph order: quantized kernel or Q/DQ-wrapped op -> int8, T=bfloat16 -> bf16,
    else fp32."""
    nodes = {node.name: node for node in graph_def.node}
    rows = []
    for node in graph_def.node:
        layer = layer_of(node.name, layers)
        if not layer or not (_is_quantized(node) or node.op in COMPUTE_OPS):
            continue
        if _is_quantized(node):
            rows.append(OpPrecision(layer, "int8", f"{node.op}, {_weight_granularity(node, nodes)} int8 weights"))
        elif _fed_by_dequantize(node, nodes):
            rows.append(OpPrecision(layer, "int8", f"{node.op} between QuantizeV2/Dequantize, "
                                                   f"{_weight_granularity(node, nodes)} int8 weights"))
        elif _is_bfloat16(node):
            rows.append(OpPrecision(layer, "bf16", f"{node.op} in bfloat16 (Cast in and out)"))
        else:
            rows.append(OpPrecision(layer, "fp32", node.op))
    return rows


def node_counts(graph_def) -> Counter:
    """How many QuantizeV2, Dequantize and Quantized* nodes the graph has."""
    return Counter(n.op for n in graph_def.node if n.op in QDQ_OPS or _is_quantized(n))


def has_bfloat16(graph_def) -> bool:
    """True if any node computes in or casts to bfloat16 (INC may convert excluded ops on bf16 CPUs)."""
    import tensorflow as tf

    bf16 = tf.bfloat16.as_datatype_enum
    return any(attr.type == bf16 for n in graph_def.node for attr in n.attr.values())


def onednn_verbose_executions(log: str) -> list[dict]:
    """The executed primitives and graph partitions of a oneDNN verbose log (``ONEDNN_VERBOSE=1``), in order.

    Primitive lines give ``kind`` (convolution, matmul, ...), ``implementation`` (e.g. brgconv:avx512_core_amx) and
    ``dtypes`` (tensor -> data type, e.g. {'src': 's8', 'wei': 's8', 'dst': 'f32'}); graph lines (ITEX's fused int8
    partitions) give ``kind`` (e.g. quantized_convolution_post_ops) and ``ops`` (the TF node names fused).
    """
    rows = []
    for line in log.splitlines():
        fields = line.strip().split(",")
        if len(fields) < 8 or fields[0] != "onednn_verbose" or fields[2] != "exec":
            continue
        if fields[1] == "primitive":
            dtypes = dict(md.split(":", 1)[0].split("_", 1) for md in fields[7].split() if "_" in md.split(":")[0])
            rows.append({"source": "primitive", "kind": fields[4], "implementation": fields[5], "dtypes": dtypes})
        elif fields[1] == "graph":
            rows.append({"source": "graph", "kind": fields[5], "ops": fields[6].split(";")})
    return rows
