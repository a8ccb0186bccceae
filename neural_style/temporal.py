"""Stylizing video frames by optimisation, each consistent with the one before (Ruder, Dosovitskiy and Brox 2016).

The first frame is optimised as an image is. Every later frame starts from the previous result warped into it by
the optical flow between the content frames (:mod:`neural_style.flow`), and its objective gains a temporal term:
``temporal_weight`` times the mean squared difference to that warped result on the pixels where the flow passes
the consistency checks (:func:`neural_style.losses.temporal_loss`). Nothing here prints, reads or writes files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from neural_style import losses as L
from neural_style.color import preserve_colors
from neural_style.config import TEMPORAL_WEIGHT, StyleConfig
from neural_style.engines import AdamEngine
from neural_style.errors import NeuralStyleError, NonFiniteLossError
from neural_style.image_io import to_uint8
from neural_style.matconvnet import VggWeights
from neural_style.stylization import Progress, Stylization, build_objective
from neural_style.vgg import preprocess, unprocess

__all__ = ["TemporalObjective", "stylize_frames"]


@dataclasses.dataclass(frozen=True)
class TemporalObjective(L.Objective):
    """:class:`~neural_style.losses.Objective` plus the temporal term: ``{content, style, tv, temporal, total}``.

    Attributes:
        temporal_weight: weight of the temporal term.
        warped: [1, H, W, 3] the previous result warped into this frame, in the network's input space; None (no
            temporal term: the first frame, or independent frames).
        mask: [1, H, W, 1] 1 where the flow is trusted, 0 elsewhere; None with ``warped``.
    """

    temporal_weight: float = TEMPORAL_WEIGHT
    warped: tf.Tensor | None = None
    mask: tf.Tensor | None = None

    @classmethod
    def extend(cls, objective: L.Objective, temporal_weight: float) -> TemporalObjective:
        """``objective`` with its targets and weights, and a temporal term of ``temporal_weight`` (none yet)."""
        fields = {f.name: getattr(objective, f.name) for f in dataclasses.fields(L.Objective)}
        return cls(**fields, temporal_weight=temporal_weight)

    def with_previous(self, warped: np.ndarray | None, mask: np.ndarray | None) -> TemporalObjective:
        """The same objective compared with another warped result ([H, W, 3], input space) and mask ([H, W])."""
        if warped is None or mask is None:
            return dataclasses.replace(self, warped=None, mask=None)
        return dataclasses.replace(
            self,
            warped=tf.constant(np.asarray(warped, np.float32)[None]),
            mask=tf.constant(np.asarray(mask, np.float32)[None, ..., None]),
        )

    def with_content(self, content: np.ndarray, mean_pixel: np.ndarray) -> TemporalObjective:
        """The same objective with the content targets of another frame, [H, W, 3] RGB 0..255."""
        changed = self.with_targets(content=preprocess(content, mean_pixel))
        assert isinstance(changed, TemporalObjective)
        return changed

    def __call__(self, images: tf.Tensor, **overrides: Any) -> dict[str, tf.Tensor]:
        """The weighted terms of images [N, H, W, 3]; ``overrides`` as for :meth:`Objective.__call__`."""
        terms = dict(super().__call__(images, **overrides))
        if self.warped is None or self.mask is None:
            terms["temporal"] = tf.zeros_like(terms["total"])
            return terms
        temporal = self.temporal_weight * L.temporal_loss(images, self.warped, self.mask)
        terms["temporal"] = temporal
        terms["total"] = terms["total"] + temporal
        return terms


def _frame_result(image: np.ndarray) -> np.ndarray:
    """A frame's result as it is written (rounded to 0..255 levels), so a resumed run continues from the same one."""
    return to_uint8(image).astype(np.float32)


def stylize_frames(
    weights: VggWeights,
    frames: Iterable[np.ndarray],
    styles: Sequence[np.ndarray],
    config: StyleConfig,
    *,
    temporal_weight: float = TEMPORAL_WEIGHT,
    frame_iterations: int | None = None,
    first: int = 0,
    previous: tuple[np.ndarray, np.ndarray] | None = None,
) -> Iterator[tuple[int, Progress]]:
    """Optimises video frames in order, each starting from and held close to the previous result.

    The first frame runs ``config`` as an image would. With ``temporal_weight`` above 0 each later frame starts from
    the previous result warped by the optical flow (no noise) for ``frame_iterations`` iterations, with the temporal
    term (:class:`TemporalObjective`), and its result is the image after the last iteration (with Adam, one step
    compiled once serves all these frames); with 0 every frame is an independent run of ``config`` (same start
    noise).
    The result a frame passes on is rounded to whole 0..255 levels, as it is written, so that a run resumed at a
    frame (``first``, ``previous``) gives the frames an uninterrupted run gives.

    Args:
        weights: the VGG parameters.
        frames: the content frames from frame ``first`` on, [H, W, 3] RGB 0..255, all one size.
        styles: S style images [H_s, W_s, 3] RGB 0..255, at the scale wanted.
        config: the settings of the first frame (and of every frame with ``temporal_weight`` 0).
        temporal_weight: weight of the temporal term; 0 for independent frames.
        frame_iterations: iterations of the frames after the first; None: ``config.iterations``.
        first: the index of the first frame given (for a resumed run).
        previous: (content frame, result) of frame ``first - 1``, RGB 0..255, when ``first`` > 0.

    Yields:
        (frame index, :class:`~neural_style.stylization.Progress` of that frame's run); the record with ``final``
        carries the frame's result in ``image``. A frame's losses include ``"temporal"``.

    Raises:
        NeuralStyleError: bad settings, frames of different sizes, or ``previous`` missing for ``first`` > 0.
        NonFiniteLossError: the loss of a frame became NaN or infinite.
    """
    if temporal_weight < 0 or not np.isfinite(temporal_weight):
        raise NeuralStyleError(
            f"is {temporal_weight}; it must be a finite number, 0 or more", setting="temporal_weight"
        )
    if frame_iterations is not None and frame_iterations < 1:
        raise NeuralStyleError(f"is {frame_iterations}; it must be at least 1", setting="frame_iterations")
    if first > 0 and previous is None:
        raise NeuralStyleError("a run that starts after the first frame needs the previous frame and its result")
    config.validate(len(styles))
    later = dataclasses.replace(config, iterations=frame_iterations or config.iterations, initial_noiseblend=0.0)
    objective: TemporalObjective | None = None
    guided: _GuidedFrames | None = None
    for index, frame in enumerate(frames, start=first):
        content = np.asarray(frame, np.float32)
        if objective is None:
            objective = TemporalObjective.extend(build_objective(weights, content, styles, config), temporal_weight)
        else:
            objective = objective.with_content(content, weights.mean_pixel)
        if previous is not None and previous[0].shape != content.shape:
            raise NeuralStyleError(f"frame {index} is {content.shape[:2]}, the one before {previous[0].shape[:2]}")
        if previous is None or temporal_weight == 0:
            run: Iterable[Progress] = Stylization(
                weights, content, styles, config, objective=objective.with_previous(None, None)
            )
        else:
            from neural_style.flow import temporal_guide

            warped, mask = temporal_guide(previous[0], content, previous[1])
            if later.optimizer == "adam":
                if guided is None or guided.shape != content.shape:
                    guided = _GuidedFrames(weights, objective, content.shape, later)
                run = guided.run(content, warped, mask)
            else:
                start = objective.with_previous(preprocess(warped, weights.mean_pixel), mask)
                run = Stylization(weights, content, styles, later, objective=start, initial=warped)
        result: np.ndarray | None = None
        for record in run:
            if record.final:
                result = record.image
            yield index, record
        assert result is not None
        previous = (content, _frame_result(result))


class _GuidedFrames:
    """The frames after the first, optimised with Adam by one engine compiled once for all of them.

    The frame's content targets, the warped previous result and the mask are variables the compiled step reads, so
    a new frame assigns them, and the image and Adam's moments, instead of tracing the step again (which takes
    longer than a few dozen iterations of a small frame). Each frame runs ``config.iterations`` steps from the
    warped result; its result is the image after the last step.
    """

    def __init__(
        self, weights: VggWeights, objective: TemporalObjective, shape: tuple[int, ...], config: StyleConfig
    ) -> None:
        assert objective.content_targets is not None
        self.weights, self.config, self.objective, self.shape = weights, config, objective, shape
        self.content = {
            layer: tf.Variable(value, trainable=False, name=f"content_{layer}")
            for layer, value in objective.content_targets.items()
        }
        self.warped = tf.Variable(tf.zeros((1, *shape), tf.float32), trainable=False, name="warped")
        self.mask = tf.Variable(tf.zeros((1, *shape[:2], 1), tf.float32), trainable=False, name="mask")
        loss = dataclasses.replace(objective, content_targets=self.content, warped=self.warped, mask=self.mask)
        params = {
            "blend": np.asarray(objective.blend, np.float32).reshape(1, -1),
            "style_weight": np.asarray([config.style_weight], np.float32),
        }
        settings = (config.learning_rate, config.beta1, config.beta2, config.epsilon)
        mean = np.asarray(weights.mean_pixel, np.float32)
        bounds = (-mean, 255.0 - mean) if config.clip else None
        self.engine = AdamEngine(
            loss, np.zeros((1, *shape), np.float32), params, settings, bounds=bounds, jit_compile=config.xla
        )

    def run(self, content: np.ndarray, warped: np.ndarray, mask: np.ndarray) -> Iterator[Progress]:
        """The records of one frame: content [H, W, 3], warped previous result [H, W, 3] (RGB 0..255), mask [H, W]."""
        mean = self.weights.mean_pixel
        start = preprocess(np.asarray(warped, np.float32), mean)[None]
        for layer, value in self.objective.content_features(preprocess(content, mean)[None]).items():
            self.content[layer].assign(value)
        self.warped.assign(start)
        self.mask.assign(np.asarray(mask, np.float32)[None, ..., None])
        self.engine.image.assign(start)
        for variable in self.engine.optimizer.variables:  # Adam starts afresh: no moments, step 0
            variable.assign(tf.zeros_like(variable))
        iterations = self.config.iterations
        yield Progress(0, iterations, losses=self.engine.evaluate())
        for k in range(1, iterations + 1):
            step_losses = self.engine.step()
            if not np.isfinite(step_losses["total"]).all():
                raise NonFiniteLossError(
                    f"the loss became {step_losses['total'].tolist()} at iteration {k}; lower the learning rate or "
                    "the loss weights",
                    None,
                )
            final = k == iterations
            images = self._result(content) if final else None
            losses = self.engine.evaluate() if final else None
            yield Progress(
                k,
                iterations,
                step_loss=step_losses["total"],
                losses=losses,
                images=images,
                final=final,
                step_losses=step_losses,
            )

    def _result(self, content: np.ndarray) -> np.ndarray:
        """The image being optimised, RGB 0..255 [1, H, W, 3] (colours preserved if asked)."""
        rgb = unprocess(self.engine.images(), self.weights.mean_pixel).astype(np.float32)
        if self.config.color_mode == "luminance":
            rgb = np.stack([preserve_colors(image, content) for image in rgb])
        return rgb
