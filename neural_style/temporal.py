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
from neural_style.color import color_inputs
from neural_style.config import TEMPORAL_WEIGHT, StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights
from neural_style.stylization import Progress, Stylization, build_objective
from neural_style.vgg import preprocess

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
        """The same objective with the content targets of another frame, [H, W, 3] RGB 0..255 (as the network is
        given it: see :func:`neural_style.color.color_inputs`)."""
        changed = self.with_targets(content=preprocess(content, mean_pixel))
        assert isinstance(changed, TemporalObjective)
        return changed

    def held(self, shape: tuple[int, ...]) -> TemporalObjective:
        """The same objective with its content targets, warped result and mask held in variables, for frames of
        ``shape`` [H, W, 3]: a step compiled for it serves every frame that :meth:`assign` gives it."""
        assert self.content_targets is not None
        content = {
            layer: tf.Variable(value, trainable=False, name=f"content_{layer}")
            for layer, value in self.content_targets.items()
        }
        warped = tf.Variable(tf.zeros((1, *shape), tf.float32), trainable=False, name="warped")
        mask = tf.Variable(tf.zeros((1, *shape[:2], 1), tf.float32), trainable=False, name="mask")
        return dataclasses.replace(self, content_targets=content, warped=warped, mask=mask)

    def assign(self, frame: TemporalObjective) -> None:
        """Copies the content targets, warped result and mask of ``frame`` into this :meth:`held` objective."""
        assert self.content_targets is not None and frame.content_targets is not None
        assert isinstance(self.warped, tf.Variable) and isinstance(self.mask, tf.Variable)
        for layer, value in frame.content_targets.items():
            self.content_targets[layer].assign(value)
        self.warped.assign(tf.zeros_like(self.warped) if frame.warped is None else frame.warped)
        self.mask.assign(tf.zeros_like(self.mask) if frame.mask is None else frame.mask)

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

    Every frame is a :class:`~neural_style.stylization.Stylization` of ``config``, so every setting of a run
    (optimiser, average, stopping rules, colours, best image judged as saved) applies to every frame. The first
    frame runs as an image would. With ``temporal_weight`` above 0 each later frame starts from the previous result
    warped by the optical flow (no noise) for ``frame_iterations`` iterations, with the temporal term
    (:class:`TemporalObjective`); one run serves all these frames, restarted for each with the frame's targets
    assigned to variables, so its steps are compiled once. With 0 every frame is an independent run of ``config``
    (same start noise). A frame's result is its run's result: the best image judged as saved, rounded to whole
    0..255 levels as it is written, so a run resumed at a frame (``first``, ``previous``) gives the frames an
    uninterrupted run gives.

    Args:
        weights: the VGG parameters.
        frames: the content frames from frame ``first`` on, [H, W, 3] RGB 0..255, all one size.
        styles: S style images [H_s, W_s, 3] RGB 0..255, at the scale wanted.
        config: the settings of every frame (the later frames' iterations are ``frame_iterations``).
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
    if config.tile_size is not None and temporal_weight > 0:
        raise NeuralStyleError(
            "video frames are optimised whole (the temporal term is not tiled); leave it unset or use a smaller width",
            setting="tile_size",
        )
    later = dataclasses.replace(config, iterations=frame_iterations or config.iterations, initial_noiseblend=0.0)
    mean = weights.mean_pixel
    objective: TemporalObjective | None = None
    held: TemporalObjective | None = None
    guided: Stylization | None = None  # the one run of the frames after the first
    for index, frame in enumerate(frames, start=first):
        content = np.asarray(frame, np.float32)
        if previous is not None and previous[0].shape != content.shape:
            raise NeuralStyleError(f"frame {index} is {content.shape[:2]}, the one before {previous[0].shape[:2]}")
        seen = color_inputs(content, [], config.color_mode)[0]  # the content as the network is given it
        if objective is None:
            objective = TemporalObjective.extend(build_objective(weights, content, styles, config), temporal_weight)
        else:
            objective = objective.with_content(seen, mean)
        run: Stylization
        if previous is None or temporal_weight == 0:
            run = Stylization(weights, content, styles, config, objective=objective.with_previous(None, None))
        else:
            from neural_style.flow import temporal_guide

            warped, mask = temporal_guide(previous[0], content, previous[1])
            if config.color_mode == "luminance":  # the run optimises the luminance; so is it compared
                warped = color_inputs(warped, [], config.color_mode)[0]
            frame_objective = objective.with_previous(preprocess(warped, mean), mask)
            if guided is None or held is None or held.mask is None or held.mask.shape[1:3] != content.shape[:2]:
                held = frame_objective.held(content.shape)
                held.assign(frame_objective)
                guided = Stylization(weights, content, styles, later, objective=held, initial=warped)
            else:
                held.assign(frame_objective)
                guided.restart(content, initial=warped)
            run = guided
        result: np.ndarray | None = None
        for record in run:
            if record.final:
                result = record.image
            yield index, record
        assert result is not None
        previous = (content, result)
