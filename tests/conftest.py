"""Fixtures shared by the unit tests."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def seeded_generator():
    """A generator with seeded He-init weights and non-trivial BatchNorm statistics (so BN folding is exercised).

    Shared by the variant tests; variants must not modify the model they are built from.
    """
    import keras

    from gan import model

    keras.utils.set_random_seed(0)
    generator = model.build_generator()
    rng = np.random.default_rng(0)
    for name in ("batch_normalization_1", "batch_normalization_2"):
        layer = generator.get_layer(name)
        c = layer.moving_mean.shape[0]
        layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c),
                           rng.uniform(0.5, 2.0, c)])
    return generator
