"""Variables of images and feature maps whose height and width may change between runs.

A ``tf.function`` that reads a variable is traced for the variable's static shape. Coarse-to-fine runs the same
optimisation at several sizes: with the spatial axes of its variables left unknown (an array [N, H, W, C] is held
as [N, None, None, C]), one traced step serves every size, and a new size is only an ``assign``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["resizable", "resizable_spec"]


def resizable(value: np.ndarray | tf.Tensor, name: str, *, lead: int = 1) -> tf.Variable:
    """A non-trainable variable holding ``value`` whose axes between the first ``lead`` ones and the last may
    change size on ``assign`` (those of [lead axes..., H, W, C]: H and W); the others keep theirs."""
    value = tf.convert_to_tensor(value)
    return tf.Variable(value, trainable=False, name=name, shape=_relaxed(value.shape, lead))


def resizable_spec(like: np.ndarray | tf.Tensor, *, lead: int = 1) -> tf.TensorSpec:
    """The ``tf.TensorSpec`` of arrays like ``like`` with the axes of :func:`resizable` free: a ``tf.function``
    with it as its input signature is traced once for every size."""
    return tf.TensorSpec(_relaxed(tf.TensorShape(np.shape(like)), lead), tf.float32)


def _relaxed(shape: tf.TensorShape, lead: int) -> tf.TensorShape:
    dims = shape.as_list()
    dims[lead:-1] = [None] * len(dims[lead:-1])
    return tf.TensorShape(dims)
