"""A loss callable made into the functions an optimiser calls: its value, and its value with the gradient.

:func:`value_and_gradient` is the one GradientTape of the project (the engines, L-BFGS on the device and the
feed-forward trainer use it); :func:`compile_loss` traces a loss into ``tf.function``s, or, for a loss that
evaluates itself piece by piece (:func:`is_piecewise`: :class:`neural_style.tiling.TiledObjective`), uses its own
evaluation and gradient, which run eagerly, tile after tile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["Evaluate", "LossFn", "ValueAndGradient", "compile_loss", "is_piecewise", "value_and_gradient"]

LossFn = Callable[..., Mapping[str, tf.Tensor]]
Evaluate = Callable[[tf.Tensor], Mapping[str, tf.Tensor]]
ValueAndGradient = Callable[[tf.Tensor], tuple[Mapping[str, tf.Tensor], tf.Tensor]]


def value_and_gradient(
    loss: Callable[[], Mapping[str, tf.Tensor]], wrt: Any, *, mean: bool = False
) -> tuple[Mapping[str, tf.Tensor], Any]:
    """The loss terms and the gradient of their summed (or mean) ``"total"`` with respect to ``wrt``.

    For a batch of independent images the sum's gradient with respect to image i is that of image i's loss alone.

    Args:
        loss: computes the terms ({"total": [N], ...}) from the current values of ``wrt``.
        wrt: a tensor, a variable or a list of variables.
        mean: differentiate the batch mean of the total (training) instead of its sum.

    Returns:
        (the terms, the gradient with the structure of ``wrt``).
    """
    with tf.GradientTape() as tape:
        if tf.is_tensor(wrt) and not isinstance(wrt, tf.Variable):
            tape.watch(wrt)  # trainable variables are watched already
        terms = loss()
        total = tf.reduce_mean(terms["total"]) if mean else tf.reduce_sum(terms["total"])
    return terms, tape.gradient(total, wrt)


def is_piecewise(loss: LossFn) -> bool:
    """Whether ``loss`` computes its own gradient piece by piece (it has a ``value_and_gradient`` method)."""
    return callable(getattr(loss, "value_and_gradient", None))


def compile_loss(
    loss: LossFn, params: Mapping[str, np.ndarray], *, jit_compile: bool = False, images: tf.TensorSpec | None = None
) -> tuple[Evaluate, ValueAndGradient]:
    """The evaluation and the value-and-gradient of ``loss`` with ``params`` fixed, as functions of the images.

    A plain loss is traced into two ``tf.function`` (without autograph: the loss has no tensor-dependent Python
    control flow, and converting it costs start-up), each once for the images ``images`` describes (e.g. of any
    height and width: :func:`neural_style.resizable.resizable_spec`), or without it for the first shape and then
    once for any. A piecewise loss (:func:`is_piecewise`) is called as it is: it runs its pieces one after another
    from Python, so that only one piece's activations are alive at a time.
    """
    constants = {key: tf.constant(value) for key, value in params.items()}
    if is_piecewise(loss):
        piecewise: Any = loss
        return (lambda images: loss(images, **constants)), (
            lambda images: piecewise.value_and_gradient(images, **constants)
        )

    signature = None if images is None else [images]

    @tf.function(jit_compile=jit_compile, autograph=False, reduce_retracing=True, input_signature=signature)
    def terms_and_gradient(images: tf.Tensor) -> tuple[Mapping[str, tf.Tensor], tf.Tensor]:
        return value_and_gradient(lambda: loss(images, **constants), images)

    evaluate = tf.function(
        lambda images: loss(images, **constants), autograph=False, reduce_retracing=True, input_signature=signature
    )
    return evaluate, terms_and_gradient
