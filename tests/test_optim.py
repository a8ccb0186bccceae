"""Tests of the Adam step, the start image and colour preservation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from neural_style.color import preserve_colors
from neural_style.engines import Adam
from neural_style.errors import NeuralStyleError
from neural_style.stylization import NOISE_SCALE, initial_image
from neural_style.vgg import preprocess

# Adam settings with a non-negligible epsilon, so where epsilon goes (outside the square root) matters.
LR, BETA1, BETA2, EPS = 0.1, 0.8, 0.9, 1e-2
START = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], np.float32)
GRADIENTS = [
    np.array([[0.5, -1.0, 2.0], [0.1, 0.0, -3.0]], np.float32),
    np.array([[-0.5, 2.0, 1.0], [0.2, 1.0, -1.0]], np.float32),
    np.array([[1.0, 0.5, -2.0], [-0.3, 4.0, 0.5]], np.float32),
]

MEAN_PIXEL = np.array([123.68, 116.779, 103.939], np.float32)


def _adam_reference(start: np.ndarray, gradients: list[np.ndarray]) -> list[np.ndarray]:
    """TF/Keras Adam in float64, the variable after each step."""
    var = start.astype(np.float64)
    m = np.zeros_like(var)
    v = np.zeros_like(var)
    history = []
    for t, g in enumerate(gradients, start=1):
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g**2
        var = var - LR * np.sqrt(1 - BETA2**t) / (1 - BETA1**t) * m / (np.sqrt(v) + EPS)
        history.append(var.copy())
    return history


def test_adam_first_step_by_hand():
    """Step 1: m = 0.2 g, v = 0.1 g^2, so var -= lr sqrt(0.1)/0.2 * 0.2 g / (sqrt(0.1) |g| + eps)."""
    variable = tf.Variable([2.0])
    Adam(variable, LR, BETA1, BETA2, EPS).apply(tf.constant([0.5]), variable)
    # m = (1 - 0.8) 0.5 = 0.1; v = (1 - 0.9) 0.25 = 0.025; alpha = 0.1 sqrt(1 - 0.9) / (1 - 0.8) = 0.5 sqrt(0.1).
    m, v, alpha = 0.1, 0.025, 0.5 * np.sqrt(0.1)
    np.testing.assert_allclose(variable.numpy(), [2.0 - alpha * m / (np.sqrt(v) + EPS)], rtol=1e-6)


def test_adam_three_steps_match_the_update_rule():
    """Three steps of Adam.apply equal the TF/Keras rule computed in NumPy after every step."""
    variable = tf.Variable(START)
    adam = Adam(variable, LR, BETA1, BETA2, EPS)
    for g, expected in zip(GRADIENTS, _adam_reference(START, GRADIENTS), strict=True):
        adam.apply(tf.constant(g), variable)
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert int(adam.step.numpy()) == 3


def test_adam_matches_keras_adam():
    """Adam.apply and keras.optimizers.Adam agree after three steps with the same gradients."""
    ours = tf.Variable(START)
    adam = Adam(ours, LR, BETA1, BETA2, EPS)
    theirs = keras.Variable(START)
    keras_adam = keras.optimizers.Adam(learning_rate=LR, beta_1=BETA1, beta_2=BETA2, epsilon=EPS)
    for g in GRADIENTS:
        adam.apply(tf.constant(g), ours)
        keras_adam.apply([tf.constant(g)], [theirs])
        np.testing.assert_allclose(ours.numpy(), keras.ops.convert_to_numpy(theirs), rtol=1e-6, atol=1e-7)


def test_adam_works_inside_tf_function():
    """Adam.apply compiled in a tf.function gives the same three steps as eagerly."""
    variable = tf.Variable(START)
    adam = Adam(variable, LR, BETA1, BETA2, EPS)
    step = tf.function(lambda g: adam.apply(g, variable))
    for g in GRADIENTS:
        step(tf.constant(g))
    np.testing.assert_allclose(variable.numpy(), _adam_reference(START, GRADIENTS)[-1], rtol=1e-5, atol=1e-6)


# --- initial_image --------------------------------------------------------------------------------------------------


@pytest.fixture
def content():
    """A 32x40 RGB content image of whole numbers in 0..255."""
    return np.random.default_rng(7).integers(0, 256, (32, 40, 3)).astype(np.float32)


def test_initial_image_without_initial_is_seeded_noise(content):
    """No initial, noiseblend None: pure N(0, 0.256^2) noise, the same for a seed, different across seeds."""
    start = initial_image(content, MEAN_PIXEL, seed=1)
    assert start.shape == (1, 32, 40, 3) and start.dtype == np.float32
    assert NOISE_SCALE == 0.256
    assert abs(start.std() - 0.256) < 0.01
    assert abs(start.mean()) < 0.01
    np.testing.assert_array_equal(initial_image(content, MEAN_PIXEL, seed=1), start)
    assert not np.allclose(initial_image(content, MEAN_PIXEL, seed=2), start)


def test_initial_image_with_initial_is_exactly_the_preprocessed_initial(content):
    """An initial image and noiseblend None: exactly preprocess(initial), no noise."""
    initial = content[::-1].copy()
    start = initial_image(content, MEAN_PIXEL, initial=initial, seed=1)
    np.testing.assert_array_equal(start, preprocess(initial, MEAN_PIXEL)[None])


def test_initial_image_noiseblend_half_mixes_content_and_noise(content):
    """noiseblend 0.5 without initial: 0.5 preprocess(content) + 0.5 noise, the noise the seed gives at blend 1."""
    noise = initial_image(content, MEAN_PIXEL, noiseblend=1.0, seed=3)
    start = initial_image(content, MEAN_PIXEL, noiseblend=0.5, seed=3)
    expected = 0.5 * preprocess(content, MEAN_PIXEL)[None] + 0.5 * noise
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(start, expected)


def test_initial_image_shape_mismatch_is_an_error(content):
    """An initial image of another size than the content raises NeuralStyleError."""
    with pytest.raises(NeuralStyleError, match="initial image"):
        initial_image(content, MEAN_PIXEL, initial=content[:16])


# --- preserve_colors ------------------------------------------------------------------------------------------------


def _luma(rgb: np.ndarray) -> np.ndarray:
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """Cb and Cr, ITU-R BT.601 full range (JPEG)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([cb, cr], axis=-1)


def test_preserve_colors_takes_luma_from_stylized_and_chroma_from_content():
    """Output luma is the stylized image's, output Cb/Cr are the content's (values chosen so nothing clips)."""
    rng = np.random.default_rng(11)
    stylized = rng.uniform(60, 190, (6, 7, 3))
    content = rng.uniform(100, 150, (6, 7, 3))  # weakly saturated: chroma within about +-25 of 128
    result = preserve_colors(stylized, content)
    assert result.shape == (6, 7, 3) and result.dtype == np.float32
    assert result.min() > 0 and result.max() < 255  # no clipping happened
    np.testing.assert_allclose(_luma(result), _luma(stylized), atol=1e-3)
    np.testing.assert_allclose(_chroma(result), _chroma(content), atol=1e-3)


def test_preserve_colors_gray_on_gray_returns_the_stylized_image():
    """A gray stylized image on a gray content (chroma 128) comes back unchanged."""
    rng = np.random.default_rng(12)
    stylized = np.repeat(rng.uniform(0, 255, (5, 4, 1)), 3, axis=-1)
    content = np.repeat(rng.uniform(0, 255, (5, 4, 1)), 3, axis=-1)
    np.testing.assert_allclose(preserve_colors(stylized, content), stylized, atol=1e-3)
