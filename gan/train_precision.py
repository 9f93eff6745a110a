"""Training copies of the 3DGAN networks in Keras ``mixed_bfloat16``, with the conv bias added in float32.

Under ``mixed_bfloat16`` a stock Keras Conv3D adds its bias in bfloat16, and TensorFlow on CPU then sums the
bias gradient (over batch x 25^3 cells) in bfloat16: a sum of 5e5 values of ~1 comes out as 2048 and the
biases stop learning. :class:`FP32BiasConv3D` convolves in the compute dtype, adds the float32 bias in float32
and casts back, so the bias gradient is summed in float32. Its variables (``kernel``, ``bias``) are those of
Conv3D, so weights move between the training copy and the CERN-layout model by name.
"""

from __future__ import annotations

MIXED = "mixed_bfloat16"
FLOAT32_LAYERS = frozenset({
    "conv3d_1",  # wrong in bf16 on AMX (TF 2.21, see README); kept fp32 so the recipe is portable
    "conv3d_4", "re_lu_1",  # the generator's output
    "generation", "auxiliary", "ecal_sum",  # the discriminator's heads
})


def _conv_class():
    import keras

    class FP32BiasConv3D(keras.layers.Conv3D):
        """Conv3D whose bias is added (and its gradient summed) in float32 whatever the compute dtype."""

        def build(self, input_shape):
            use_bias, self.use_bias = self.use_bias, False
            super().build(input_shape)
            self.use_bias = use_bias
            if use_bias:  # created after the kernel, as in Conv3D; autocast=False keeps it float32 in call()
                self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer,
                                            trainable=True, autocast=False)

        def call(self, inputs):
            ops = keras.ops
            outputs = self.convolution_op(inputs, self.kernel)
            if self.use_bias:
                outputs = ops.cast(ops.cast(outputs, "float32") + self.bias, self.compute_dtype)
            return self.activation(outputs) if self.activation is not None else outputs

    return FP32BiasConv3D


def policy_for(layer_name: str, precision: str) -> str:
    """The Keras dtype policy of a layer in a training copy: ``precision`` except :data:`FLOAT32_LAYERS`."""
    return "float32" if precision == "float32" or layer_name in FLOAT32_LAYERS else MIXED


def training_copy(model, precision: str):
    """A copy of ``model`` (weights copied) with per-layer policies; bf16 Conv3D layers add their bias in fp32.

    ``precision`` is ``"float32"`` (a plain copy) or ``"mixed_bfloat16"``. The global dtype policy is untouched.
    """
    import keras

    if precision not in ("float32", MIXED):
        raise ValueError(f"precision must be 'float32' or '{MIXED}', got {precision!r}")
    conv_class = _conv_class()

    def rebuild(layer):
        if isinstance(layer, keras.layers.Lambda):
            return layer  # no weights; the discriminator's summed-energy head stays as built (float32)
        policy = policy_for(layer.name, precision)
        cls = layer.__class__
        if isinstance(layer, keras.layers.Conv3D) and layer.use_bias and policy == MIXED:
            cls = conv_class
        return cls.from_config({**layer.get_config(), "dtype": policy})

    copy = keras.models.clone_model(model, clone_function=rebuild)
    copy.set_weights(model.get_weights())
    return copy
