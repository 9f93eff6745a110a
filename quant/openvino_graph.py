"""The Keras generator rebuilt as an OpenVINO model with the opset API, layer by layer, from its weights.

Converting the Keras 3 graph instead turns UpSampling3D into a Tile/Reshape chain that keeps the following
convolutions out of INT8; built here, each upsampling is one Interpolate and each ZeroPadding3D becomes the
next convolution's explicit padding. OpenVINO convolutions are channels-first: the tensor is transposed to
NCDHW after the 5-D Reshape, kernels to OIDHW, and the single output channel is squeezed away at the end, so
the model maps generator inputs ``z * E / 100`` (N, 200) to showers (N, 25, 25, 25) in GeV. Ops carry the
Keras layer names as friendly names, which the runtime model keeps for its fused nodes.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from quant.base import VariantError

# The IR form of ov::disable_fp16_compression (OpenVINO >= 2025: DisablePrecisionConversion, any type -> f16). The
# CPU plugin keeps ops carrying it in their original precision under INFERENCE_PRECISION_HINT bf16 as well
# (Node::keepOrigPrecision, skipped by Graph::EnforceInferencePrecision). Python cannot create this rt_info
# attribute (RTMap takes only str/int values), so it is written into the IR and read back; save_model keeps it.
KEEP_PRECISION = {"name": "DisablePrecisionConversion", "version": "0", "value": "dynamic:f16"}
CHANNELS_FIRST = (0, 4, 1, 2, 3)  # NDHWC -> NCDHW
KERAS_TO_OIDHW = (4, 3, 0, 1, 2)  # Conv3D kernel (kd, kh, kw, in, out) -> (out, in, kd, kh, kw)


def _ops():
    from openvino import opset13

    return opset13


def _array(variable) -> np.ndarray:
    return np.asarray(variable, dtype=np.float32)


def _per_channel(values) -> np.ndarray:
    """A (C,) vector shaped to broadcast over NCDHW."""
    return _array(values).reshape(1, -1, 1, 1, 1)


def _dense(ops, x, layer, state):
    if layer.name in state.get("dense_as_conv", ()):
        return _dense_as_conv(ops, x, layer)
    y = ops.matmul(x, ops.constant(_array(layer.kernel)), False, False, name=layer.name)
    if layer.use_bias:
        y = ops.add(y, ops.constant(_array(layer.bias)), name=f"{layer.name}/bias")
    return _activation(ops, y, layer.activation.__name__, layer.name)


def _dense_as_conv(ops, x, layer):
    """The Dense layer as a 1x1x1 Convolution on (N, in, 1, 1, 1): the same sums, but an op the CPU plugin does
    not rewrite (its MatMul -> FullyConnected rewrite drops the keep-precision marker, see KEEP_PRECISION)."""
    kernel = _array(layer.kernel)
    y = ops.reshape(x, ops.constant(np.array([-1, kernel.shape[0], 1, 1, 1], np.int64)), False,
                    name=f"{layer.name}/to_5d")
    y = ops.convolution(y, ops.constant(kernel.T.reshape(kernel.shape[::-1] + (1, 1, 1)).copy()), [1, 1, 1],
                        [0, 0, 0], [0, 0, 0], [1, 1, 1], name=layer.name)
    y = ops.reshape(y, ops.constant(np.array([-1, kernel.shape[1]], np.int64)), False, name=f"{layer.name}/to_2d")
    if layer.use_bias:
        y = ops.add(y, ops.constant(_array(layer.bias)), name=f"{layer.name}/bias")
    return _activation(ops, y, layer.activation.__name__, layer.name)


def _reshape(ops, x, layer, state):
    shape = (-1,) + tuple(layer.target_shape)
    y = ops.reshape(x, ops.constant(np.array(shape, np.int64)), False, name=layer.name)
    if len(shape) != 5:
        raise VariantError(f"{layer.name}: only a reshape to (D, H, W, C) is supported, got {shape[1:]}")
    return ops.transpose(y, ops.constant(np.array(CHANNELS_FIRST, np.int64)), name=f"{layer.name}/ncdhw")


def _same_pads(kernel) -> tuple[list[int], list[int]]:
    """TensorFlow's 'same' padding for stride 1: the odd extra cell goes at the end."""
    total = [k - 1 for k in kernel]
    return [t // 2 for t in total], [t - t // 2 for t in total]


def _conv3d(ops, x, layer, state):
    if tuple(layer.strides) != (1, 1, 1) or tuple(layer.dilation_rate) != (1, 1, 1):
        raise VariantError(f"{layer.name}: only stride 1 and dilation 1 are supported")
    kernel = _array(layer.kernel)
    begin, end = _same_pads(kernel.shape[:3]) if layer.padding == "same" else ([0] * 3, [0] * 3)
    pad_begin, pad_end = state.pop("pads", ([0] * 3, [0] * 3))
    begin = [a + b for a, b in zip(begin, pad_begin, strict=True)]
    end = [a + b for a, b in zip(end, pad_end, strict=True)]
    y = ops.convolution(x, ops.constant(kernel.transpose(KERAS_TO_OIDHW).copy()), [1, 1, 1], begin, end,
                        [1, 1, 1], name=layer.name)
    if layer.use_bias:
        y = ops.add(y, ops.constant(_per_channel(layer.bias)), name=f"{layer.name}/bias")
    return _activation(ops, y, layer.activation.__name__, layer.name)


def _activation(ops, x, kind, name):
    if kind == "linear":
        return x
    if kind == "relu":
        return ops.relu(x, name=f"{name}/relu")
    raise VariantError(f"{name}: activation '{kind}' is not supported")


def _leaky_relu(ops, x, layer, state):
    slope = getattr(layer, "negative_slope", getattr(layer, "alpha", None))  # Keras 3 / Keras 2 spelling
    return ops.prelu(x, ops.constant(np.array([slope], np.float32)), name=layer.name)


def _relu(ops, x, layer, state):
    if layer.max_value is not None or float(layer.negative_slope) or float(layer.threshold):
        raise VariantError(f"{layer.name}: only a plain ReLU is supported")
    return ops.relu(x, name=layer.name)


def _batch_norm(ops, x, layer, state):
    """Inference BatchNorm as x * scale + shift over the channel axis."""
    channels = layer.moving_mean.shape[0]
    gamma = _array(layer.gamma) if layer.scale else np.ones(channels, np.float32)
    beta = _array(layer.beta) if layer.center else np.zeros(channels, np.float32)
    scale = gamma / np.sqrt(_array(layer.moving_variance) + np.float32(layer.epsilon))
    shift = beta - _array(layer.moving_mean) * scale
    y = ops.multiply(x, ops.constant(_per_channel(scale)), name=f"{layer.name}/scale")
    return ops.add(y, ops.constant(_per_channel(shift)), name=layer.name)


def _upsampling3d(ops, x, layer, state):
    """Nearest-neighbour repetition: asymmetric coordinates with floor index repeat each cell exactly.

    Interpolate-4 (opset10), not -11: the CPU plugin converts v11 to v4 and the conversion drops the
    keep-precision marker (an fp32 upsampling among bf16 layers would round to bf16).
    """
    from openvino import opset10

    spatial = [d.get_length() for d in list(x.get_output_partial_shape(0))[2:]]
    sizes = np.array([n * s for n, s in zip(spatial, layer.size, strict=True)], np.int32)
    return opset10.interpolate(x, ops.constant(sizes), ops.constant(np.array(layer.size, np.float32)), "nearest",
                               "scales", coordinate_transformation_mode="asymmetric", nearest_mode="floor",
                               axes=ops.constant(np.array([2, 3, 4], np.int64)), name=layer.name)


def _zero_padding3d(ops, x, layer, state):
    """Deferred: the next Conv3D pads explicitly (zero padding, exactly the same)."""
    state["pads"] = ([int(p[0]) for p in layer.padding], [int(p[1]) for p in layer.padding])
    return x


def _depth_to_space(ops, x, layer, state):
    """:class:`quant.fold.DepthToSpace3D` in NCDHW: channels (r1, r2, r3, c) -> interleaved grid, cropped."""
    s1, s2, s3 = layer.blocks
    channels, q1, q2, q3 = (d.get_length() for d in list(x.get_output_partial_shape(0))[1:])
    c = channels // (s1 * s2 * s3)
    y = ops.reshape(x, ops.constant(np.array([-1, s1, s2, s3, c, q1, q2, q3], np.int64)), False,
                    name=f"{layer.name}/split")
    y = ops.transpose(y, ops.constant(np.array([0, 4, 5, 1, 6, 2, 7, 3], np.int64)), name=f"{layer.name}/interleave")
    y = ops.reshape(y, ops.constant(np.array([-1, c, q1 * s1, q2 * s2, q3 * s3], np.int64)), False,
                    name=f"{layer.name}/merge")
    zero, end = np.zeros(3, np.int64), np.array(layer.size, np.int64)
    return ops.slice(y, ops.constant(zero), ops.constant(end), ops.constant(np.ones(3, np.int64)),
                     ops.constant(np.array([2, 3, 4], np.int64)), name=layer.name)


CONVERTERS = {
    "Dense": _dense, "Reshape": _reshape, "Conv3D": _conv3d, "LeakyReLU": _leaky_relu, "ReLU": _relu,
    "BatchNormalization": _batch_norm, "UpSampling3D": _upsampling3d, "ZeroPadding3D": _zero_padding3d,
    "DepthToSpace3D": _depth_to_space,
}
COMPUTE_LAYERS = ("Dense", "Conv3D")  # the layers whose runtime precision the op report shows


def compute_layer_names(generator) -> list[str]:
    return [layer.name for layer in generator.layers if type(layer).__name__ in COMPUTE_LAYERS]


def layer_ops(model, layer: str) -> list[str]:
    """Friendly names of the ops built for Keras layer ``layer`` (``layer`` itself and ``layer/...``)."""
    return [op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_friendly_name().split("/")[0] == layer and op.get_type_name() != "Constant"]


def keep_original_precision(model, op_names):
    """A copy of ``model`` whose ops ``op_names`` stay in their original (f32) precision under a bf16 hint."""
    import openvino as ov

    names = set(op_names)
    with tempfile.TemporaryDirectory() as tmp:
        xml, weights = Path(tmp) / "model.xml", Path(tmp) / "model.bin"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        tree = ET.parse(xml)
        marked = set()
        for layer in tree.getroot().iter("layer"):
            if layer.get("name") in names:
                rt_info = layer.find("rt_info")
                if rt_info is None:
                    rt_info = ET.Element("rt_info")
                    layer.insert(0, rt_info)
                ET.SubElement(rt_info, "attribute", KEEP_PRECISION)
                marked.add(layer.get("name"))
        if marked != names:
            raise VariantError(f"no op named {', '.join(sorted(names - marked))} in the OpenVINO model")
        return ov.Core().read_model(ET.tostring(tree.getroot()), weights.read_bytes())


def kept_precision_ops(model) -> list[str]:
    """Names of the ops that carry the keep-precision marker (see :data:`KEEP_PRECISION`)."""
    key = f"{KEEP_PRECISION['name']}_{KEEP_PRECISION['version']}"
    return [op.get_friendly_name() for op in model.get_ordered_ops() if key in op.get_rt_info()]


def build_model(generator, dense_as_conv=()):
    """An ``openvino.Model`` computing the generator: (N, 200) float32 -> (N, 25, 25, 25) float32 GeV.

    Dense layers named in ``dense_as_conv`` are built as 1x1x1 Convolutions (see :func:`_dense_as_conv`).
    """
    import openvino as ov

    ops, state = _ops(), {"dense_as_conv": frozenset(dense_as_conv)}
    latent = ops.parameter([-1, generator.input_shape[-1]], np.float32, name="latent")
    x = latent
    for layer in generator.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind not in CONVERTERS or (kind == "ZeroPadding3D" and "pads" in state):
            raise VariantError(f"{layer.name}: Keras layer {kind} is not supported by the OpenVINO builder")
        x = CONVERTERS[kind](ops, x, layer, state)
    state.pop("dense_as_conv")
    if state or x.get_output_partial_shape(0)[1].get_length() != 1:
        raise VariantError("the generator must end in a one-channel Conv3D (+ activation)")
    shower = ops.squeeze(x, ops.constant(np.array([1], np.int64)), name="shower")
    shower.output(0).get_tensor().set_names({"shower"})
    latent.output(0).get_tensor().set_names({"latent"})
    return ov.Model([shower.output(0)], [latent], generator.name)
