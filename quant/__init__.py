"""Reduced-precision variants of the 3DGAN generator, one module per family, behind one interface.

    from quant import registry
    variant = registry.build("bf16", generator, make_calibration(seed=0), "default")  # the model's name (context)
    showers = variant.generate(z, energy_gev)

Families, the build context and how to add a backend: :mod:`quant.registry`, :mod:`quant.context`.
"""
