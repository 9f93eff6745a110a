"""quant.activations: range statistics and the fraction of values symmetric per-tensor int8 rounds to zero."""

import numpy as np
import pytest

from quant.activations import format_stats, int8_scale, range_stats, rounded_to_zero_fraction


def test_known_values_round_to_zero_below_half_a_step():
    values = np.array([-127.0, 0.0, 0.4, -0.4, 0.6, 1.0, 2.0, 0.0])  # max|x| 127 -> scale exactly 1
    stats = range_stats("conv3d_3", values)
    assert int8_scale(values) == stats.int8_scale == 1.0
    assert stats.rounded_to_zero == pytest.approx(2 / 6)  # 0.4 and -0.4 of the six non-zero values
    assert stats.zero_fraction == pytest.approx(2 / 8)
    assert (stats.minimum, stats.maximum, stats.values) == (-127.0, 2.0, 8)


def test_ties_round_to_even_like_numpy():
    assert rounded_to_zero_fraction(np.array([0.5, 1.5, -0.5]), 1.0) == pytest.approx(2 / 3)


def test_one_outlier_sets_the_scale_and_zeroes_the_rest():
    rng = np.random.default_rng(0)
    body = rng.uniform(-1, 1, 10_000)
    heavy = range_stats("heavy", np.append(body, 1000.0))
    light = range_stats("light", body)
    assert heavy.rounded_to_zero > 0.99 and light.rounded_to_zero < 0.01
    assert heavy.tail_ratio > 100 and light.tail_ratio < 1.1


def test_given_scale_is_used():
    assert range_stats("x", np.array([1.0, 2.0, 3.0]), scale=5.0).rounded_to_zero == pytest.approx(2 / 3)


def test_all_zero_input_has_nothing_to_round():
    stats = range_stats("zeros", np.zeros(10))
    assert (stats.int8_scale, stats.rounded_to_zero, stats.zero_fraction) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize(("values", "message"), [(np.array([]), "no activation values"),
                                             (np.array([1.0, np.nan]), "activations contain NaN or inf")])
def test_bad_input_names_the_layer(values, message):
    with pytest.raises(ValueError, match=f"conv3d_4: {message}"):
        range_stats("conv3d_4", values)


def test_table_has_a_row_per_layer():
    table = format_stats([range_stats("dense_1", np.arange(5.0)), range_stats("conv3d_1", -np.arange(5.0))])
    assert table.count("\n| ") == 2 and "| dense_1 |" in table and "| conv3d_1 |" in table


@pytest.mark.tf
def test_captured_inputs_of_the_generator(seeded_generator):
    from gan.model import latent_input, sample_latent
    from quant.activations import capture_layer_inputs, layer_input_stats, layer_names

    x = latent_input(sample_latent(4, seed=1), np.array([10, 50, 100, 200], np.float32))
    layers = layer_names(seeded_generator)
    assert layers == ["dense_1", "conv3d_1", "conv3d_2", "conv3d_3", "conv3d_4"]
    captured = capture_layer_inputs(seeded_generator, x, layers, batch_size=3)
    np.testing.assert_array_equal(captured["dense_1"], x)
    assert captured["conv3d_3"].shape == (4, 28, 28, 33, 6)  # upsampled (2, 2, 3) and zero-padded conv3d_2 output
    stats = layer_input_stats(seeded_generator, x, ["conv3d_3"])
    assert stats[0].zero_fraction > 0  # the zero padding
    assert "batch_normalization_1" in layer_names(seeded_generator, include_batchnorm=True)
    with pytest.raises(ValueError, match="no layer nope"):
        capture_layer_inputs(seeded_generator, x, ["nope"])
