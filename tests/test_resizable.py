"""Tests of neural_style.resizable: variables and specs whose spatial axes may change size."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from neural_style.resizable import resizable, resizable_spec


def test_a_resizable_variable_takes_any_height_and_width_and_keeps_the_other_axes() -> None:
    variable = resizable(np.zeros((2, 4, 5, 3), np.float32), name="image")
    assert variable.shape.as_list() == [2, None, None, 3]
    variable.assign(np.ones((2, 7, 1, 3), np.float32))
    assert variable.numpy().shape == (2, 7, 1, 3) and variable.numpy().sum() == 2 * 7 * 3
    with pytest.raises(ValueError):
        variable.assign(np.ones((1, 7, 1, 3), np.float32))  # the batch keeps its size
    with pytest.raises(ValueError):
        variable.assign(np.ones((2, 7, 1, 4), np.float32))  # and the channels theirs
    pairs = resizable(np.zeros((10, 2, 4, 5, 3), np.float32), name="pairs", lead=2)
    assert pairs.shape.as_list() == [10, 2, None, None, 3]
    assert resizable(np.zeros((1, 5), np.float32), name="vector").shape.as_list() == [1, 5]


def test_one_trace_reads_a_resizable_variable_at_every_size() -> None:
    variable = resizable(np.zeros((1, 2, 2, 3), np.float32), name="image")
    total = tf.function(lambda: tf.reduce_sum(variable), autograph=False)
    for height, width in ((2, 2), (3, 5), (8, 1)):
        variable.assign(np.full((1, height, width, 3), 2.0, np.float32))
        assert total().numpy() == 2.0 * height * width * 3
    assert total.experimental_get_tracing_count() == 1


def test_a_function_of_a_resizable_spec_is_traced_once() -> None:
    spec = resizable_spec(np.zeros((1, 4, 6, 3)))
    assert spec.shape.as_list() == [1, None, None, 3] and spec.dtype == tf.float32
    mean = tf.function(lambda images: tf.reduce_mean(images, axis=(1, 2)), input_signature=[spec])
    for height, width in ((4, 6), (9, 2)):
        out = mean(tf.fill((1, height, width, 3), 5.0)).numpy()
        np.testing.assert_array_equal(out, np.full((1, 3), 5.0))
    assert mean.experimental_get_tracing_count() == 1
