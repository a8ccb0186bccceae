"""Stylizing video frames by optimisation, consistent over time (Ruder, Dosovitskiy and Brox 2016).

The first frame is optimised as an image is. Every later frame starts from the previous result warped into it by
the optical flow between the content frames (:mod:`neural_style.flow`), and its objective gains a temporal term:
``temporal_weight`` times the mean squared difference to the results of earlier frames warped into it, each on the
pixels where its flow is trusted and no nearer frame's is (:func:`neural_style.losses.temporal_loss`; with offsets
beyond 1, Ruder et al.'s long-term consistency). With several passes the clip is then optimised again backward,
forward, ..., each frame starting from its result of the pass before blended with its neighbour's result of this
pass (Ruder et al.'s multi-pass algorithm). Every frame is a :class:`~neural_style.stylization.Stylization` of one
``StyleConfig``; nothing here prints, reads or writes files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from neural_style import losses as L
from neural_style.color import color_inputs
from neural_style.config import FRAME_LEARNING_RATE_SHARE, PASS_BLEND, TEMPORAL_WEIGHT, StyleConfig, TemporalConfig
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights
from neural_style.objective import Objective
from neural_style.progress import Progress
from neural_style.stylization import Stylization, build_objective
from neural_style.vgg import preprocess

__all__ = ["TemporalObjective", "pass_start", "stylize_clip", "stylize_frames"]


@dataclasses.dataclass(frozen=True)
class TemporalObjective(Objective):
    """:class:`~neural_style.objective.Objective` plus the temporal term: ``{content, style, tv, temporal, total}``.

    The temporal term is ``temporal_weight * sum_k temporal_loss(images, warped[k], mask[k])`` over the K earlier
    frames compared with (one: Ruder et al.'s short-term term; several, weighed by
    :func:`neural_style.flow.long_term_masks`: their long-term term).

    Attributes:
        temporal_weight: weight of the temporal term.
        warped: [K, H, W, 3] the earlier results warped into this frame, in the network's input space; None (no
            temporal term: the first frame, or independent frames).
        mask: [K, H, W, 1] the weight of each warped result at each pixel (1 trusted, 0 not); None with ``warped``.
    """

    temporal_weight: float = TEMPORAL_WEIGHT
    warped: tf.Tensor | None = None
    mask: tf.Tensor | None = None

    @classmethod
    def extend(cls, objective: Objective, temporal_weight: float) -> TemporalObjective:
        """``objective`` with its targets and weights, and a temporal term of ``temporal_weight`` (none yet)."""
        fields = {f.name: getattr(objective, f.name) for f in dataclasses.fields(Objective)}
        return cls(**fields, temporal_weight=temporal_weight)

    def with_previous(self, warped: np.ndarray | None, mask: np.ndarray | None) -> TemporalObjective:
        """The same objective compared with other warped results ([K, H, W, 3] in input space, or one [H, W, 3])
        weighed by ``mask`` ([K, H, W], or one [H, W]); None for no temporal term."""
        if warped is None or mask is None:
            return dataclasses.replace(self, warped=None, mask=None)
        warped = np.asarray(warped, np.float32)
        mask = np.asarray(mask, np.float32)
        if warped.ndim == 3:
            warped, mask = warped[None], mask[None]
        return dataclasses.replace(self, warped=tf.constant(warped), mask=tf.constant(mask[..., None]))

    def with_content(self, content: np.ndarray, mean_pixel: np.ndarray) -> TemporalObjective:
        """The same objective with the content targets of another frame, [H, W, 3] RGB 0..255 (as the network is
        given it: see :func:`neural_style.color.color_inputs`)."""
        changed = self.with_targets(content=preprocess(content, mean_pixel))
        assert isinstance(changed, TemporalObjective)
        return changed

    def held(self, shape: tuple[int, ...], count: int = 1) -> TemporalObjective:
        """The same objective with its targets (:meth:`~neural_style.objective.Objective.held_targets`), ``count``
        warped results and masks held in variables, for frames of ``shape`` [H, W, 3]: a step compiled for it
        serves every frame that :meth:`assign` gives it."""
        warped = tf.Variable(tf.zeros((count, *shape), tf.float32), trainable=False, name="warped")
        mask = tf.Variable(tf.zeros((count, *shape[:2], 1), tf.float32), trainable=False, name="mask")
        return dataclasses.replace(self.held_targets(), warped=warped, mask=mask)

    def assign(self, frame: TemporalObjective) -> None:
        """Copies the targets, warped results and masks of ``frame`` (as many as this :meth:`held` objective holds;
        none: masks of 0, no temporal term) into this objective."""
        assert isinstance(self.warped, tf.Variable) and isinstance(self.mask, tf.Variable)
        self.assign_targets(frame)
        self.warped.assign(tf.zeros_like(self.warped) if frame.warped is None else frame.warped)
        self.mask.assign(tf.zeros_like(self.mask) if frame.mask is None else frame.mask)

    def __call__(self, images: tf.Tensor, **overrides: Any) -> dict[str, tf.Tensor]:
        """The weighted terms of images [N, H, W, 3]; ``overrides`` as for :meth:`Objective.__call__`."""
        terms = dict(super().__call__(images, **overrides))
        if self.warped is None or self.mask is None:
            terms["temporal"] = tf.zeros_like(terms["total"])
            return terms
        count = int(self.warped.shape[0])
        each = [L.temporal_loss(images, self.warped[k : k + 1], self.mask[k : k + 1]) for k in range(count)]
        temporal = self.temporal_weight * tf.add_n(each)
        terms["temporal"] = temporal
        terms["total"] = terms["total"] + temporal
        return terms


def pass_start(warped: np.ndarray, mask: np.ndarray, before: np.ndarray, blend: float = PASS_BLEND) -> np.ndarray:
    """A frame's start in a pass after the first: its neighbour's result of this pass, warped into it, blended with
    its own result of the pass before where the flow is trusted (Ruder et al.'s multi-pass initialisation).

    ``blend * mask * warped + (1 - blend * mask) * before``: where the flow is not trusted, the frame's own result.

    Args:
        warped: [H, W, 3] the neighbour's result warped into this frame.
        mask: [H, W] where the flow is trusted (1) or not (0).
        before: [H, W, 3] this frame's result of the pass before.
        blend: the neighbour's share where the flow is trusted, in [0, 1].

    Returns:
        [H, W, 3] float32.
    """
    share = np.float32(blend) * np.asarray(mask, np.float32)[..., None]
    return (share * np.asarray(warped, np.float32) + (1 - share) * np.asarray(before, np.float32)).astype(np.float32)


class _Frames:
    """The content frames of a clip by index, as the loop asks for them.

    ``frames`` holds frame ``first`` onwards (``earlier``: some frames before it). A sequence is indexed; anything
    else is read once, in order, as far as asked, and only the ``keep`` frames before the newest read are kept (all
    when ``keep`` is None).
    """

    def __init__(
        self,
        frames: Iterable[np.ndarray],
        *,
        first: int = 0,
        earlier: Mapping[int, np.ndarray] | None = None,
        keep: int | None = None,
    ) -> None:
        self._first, self._keep = first, keep
        self._known: dict[int, np.ndarray] = dict(earlier or {})
        self._sequence = frames if isinstance(frames, Sequence) else None
        self._iterator = None if self._sequence is not None else iter(frames)
        self._next = first  # the index of the next frame the iterator gives

    def exists(self, index: int) -> bool:
        """Whether the clip has frame ``index`` (reading it if need be)."""
        if index in self._known:
            return True
        if self._sequence is not None:
            return self._first <= index < self._first + len(self._sequence)
        assert self._iterator is not None
        while self._next <= index:
            frame = next(self._iterator, None)
            if frame is None:
                return False
            self._known[self._next] = frame
            self._next += 1
            if self._keep is not None:
                for old in [i for i in self._known if i < self._next - 1 - self._keep]:
                    del self._known[old]
        return index in self._known

    def __getitem__(self, index: int) -> np.ndarray:
        """Frame ``index``, [H, W, 3] float32 RGB 0..255 (it must exist)."""
        if self._sequence is not None and index not in self._known:
            return np.asarray(self._sequence[index - self._first], np.float32)
        return np.asarray(self._known[index], np.float32)

    def count(self) -> int:
        """The number of frames in the clip (reading them all)."""
        if self._sequence is not None:
            return self._first + len(self._sequence)
        while self.exists(self._next):
            pass
        return self._next


def stylize_clip(
    weights: VggWeights,
    frames: Iterable[np.ndarray],
    styles: Sequence[np.ndarray],
    config: StyleConfig,
    temporal: TemporalConfig | None = None,
    *,
    start: tuple[int, int] = (0, 0),
    results: Mapping[int, np.ndarray] | None = None,
) -> Iterator[tuple[int, int, Progress]]:
    """Optimises the frames of a clip in one or more passes, each frame consistent with those before it.

    Every frame is a :class:`~neural_style.stylization.Stylization` of ``config``, so every setting of a run
    (optimiser, average, stopping rules, colours, best image judged as saved, start noise) applies to every frame;
    one run serves every frame that starts from noise and one every frame that starts from a result, restarted for
    each with the frame's targets assigned to variables, so their steps are compiled once.

    The first pass goes forward. Its first frame runs ``config.iterations`` from the start ``config`` gives (noise
    by default); each later frame runs ``frame_iterations`` (with Adam, at ``frame_learning_rate``) from the previous
    result warped by the optical flow, with the temporal term over the earlier frames at ``temporal_offsets``
    (:class:`TemporalObjective`). With a
    temporal weight of 0 every frame of the first pass is an independent run of ``config`` (the same start noise).
    Each further pass goes the other way: every frame runs ``frame_iterations`` from :func:`pass_start` of its
    neighbour's result of this pass and its own of the pass before, with the temporal term over the frames at the
    offsets in the direction the pass came from. The first frame of a pass, the last of the pass before, starts
    from its own result and is held to the frames the pass before held it to (with their results of that pass, which
    they still have), so it does not drift unheld.

    A frame's result is its run's result: the best image judged as saved, rounded to whole 0..255 levels as it is
    written, so a run resumed with the results saved (``start``, ``results``) gives the frames an uninterrupted run
    gives. With one pass the frames are read as they are needed and only the last few kept; with more, the whole
    clip and its results are held.

    Args:
        weights: the VGG parameters.
        frames: the content frames of the whole clip from its first, [H, W, 3] RGB 0..255, all one size.
        styles: S style images [H_s, W_s, 3] RGB 0..255, at the scale wanted.
        config: the settings of every frame (the iterations and Adam step size of those that start from a result
            are ``temporal``'s).
        temporal: the video settings; None: :class:`~neural_style.config.TemporalConfig`'s defaults.
        start: (pass, frames done in it), both from 0: where a resumed run starts.
        results: {frame index: result [H, W, 3] RGB 0..255} of a resumed run: in the first pass, those of the frames
            up to the largest offset before the start; in a later pass, every frame's newest (this pass's for the
            frames it has done, the pass before's for the others).

    Yields:
        (pass, frame index, :class:`~neural_style.progress.Progress` of that frame's run), passes and frames
        from 0; the record with ``final`` carries the frame's result in ``image``. A frame's losses include
        ``"temporal"``.

    Raises:
        NeuralStyleError: bad settings, frames of different sizes, a start outside the clip or results missing.
        NonFiniteLossError: the loss of a frame became NaN or infinite.
    """
    temporal = temporal or TemporalConfig()
    _check(config, temporal, len(styles))
    clip = _Frames(frames, keep=None if temporal.passes > 1 else max(temporal.temporal_offsets))
    stage, done = start
    if not 0 <= stage < temporal.passes or done < 0:
        raise NeuralStyleError(f"a run of {temporal.passes} passes cannot start at pass {stage + 1}, frame {done + 1}")
    if stage > 0:
        needed = list(range(clip.count()))
        if done > len(needed):
            raise NeuralStyleError(f"a run cannot start at frame {done + 1} of a clip of {len(needed)} frames")
    elif temporal.passes > 1:  # the next pass starts from them all
        needed = list(range(done))
    else:
        needed = list(range(max(0, done - max(temporal.temporal_offsets)), done))
    held = dict(results or {})
    missing = [index for index in needed if index not in held]
    if missing:
        listed = ", ".join(str(index) for index in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise NeuralStyleError(
            f"a run resumed at pass {stage + 1}, frame {done + 1} needs the results of frames {listed} (from 0)"
        )
    yield from _frame_runs(weights, clip, styles, config, temporal, start, held)


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
    """Optimises video frames in order, each starting from and held close to the previous result: one forward pass
    of :func:`stylize_clip` with the short-term temporal term, reading the frames as it goes.

    Args:
        weights: the VGG parameters.
        frames: the content frames from frame ``first`` on, [H, W, 3] RGB 0..255, all one size.
        styles: S style images [H_s, W_s, 3] RGB 0..255, at the scale wanted.
        config: the settings of every frame (the later frames' iterations are ``frame_iterations``, their Adam step
            size :class:`~neural_style.config.TemporalConfig`'s default).
        temporal_weight: weight of the temporal term; 0 for independent frames.
        frame_iterations: iterations of the frames after the first; None: ``config.iterations``.
        first: the index of the first frame given (for a resumed run).
        previous: (content frame, result) of frame ``first - 1``, RGB 0..255, when ``first`` > 0.

    Yields:
        (frame index, :class:`~neural_style.progress.Progress` of that frame's run), as :func:`stylize_clip`.

    Raises:
        NeuralStyleError: bad settings, frames of different sizes, or ``previous`` missing for ``first`` > 0.
        NonFiniteLossError: the loss of a frame became NaN or infinite.
    """
    temporal = TemporalConfig(temporal_weight=temporal_weight, frame_iterations=frame_iterations)
    _check(config, temporal, len(styles))
    if first > 0 and previous is None:
        raise NeuralStyleError("a run that starts after the first frame needs the previous frame and its result")
    earlier = {} if previous is None else {first - 1: previous[0]}
    results = {} if previous is None else {first - 1: previous[1]}
    clip = _Frames(frames, first=first, earlier=earlier, keep=1)
    for _, index, record in _frame_runs(weights, clip, styles, config, temporal, (0, first), results):
        yield index, record


def _check(config: StyleConfig, temporal: TemporalConfig, n_styles: int) -> None:
    """Every setting of a video run, before any work."""
    temporal.validate()
    config.validate(n_styles)
    if config.tile_size is not None and temporal.temporal_weight > 0:
        raise NeuralStyleError(
            "video frames are optimised whole (the temporal term is not tiled); leave it unset or use a smaller width",
            setting="tile_size",
        )


def _frame_runs(
    weights: VggWeights,
    clip: _Frames,
    styles: Sequence[np.ndarray],
    config: StyleConfig,
    temporal: TemporalConfig,
    start: tuple[int, int],
    results: dict[int, np.ndarray],
) -> Iterator[tuple[int, int, Progress]]:
    """The loop of :func:`stylize_clip` over passes and frames; ``results`` holds the frames' newest results."""
    offsets = temporal.temporal_offsets
    weight = temporal.temporal_weight
    later = dataclasses.replace(
        config,
        iterations=temporal.frame_iterations or config.iterations,
        learning_rate=temporal.frame_learning_rate or FRAME_LEARNING_RATE_SHARE * config.learning_rate,
    )
    mean = weights.mean_pixel

    def seen(image: np.ndarray) -> np.ndarray:  # an image as the network is given it (its luminance, if asked)
        return color_inputs(np.asarray(image, np.float32), [], config.color_mode)[0]

    base: TemporalObjective | None = None
    held: TemporalObjective | None = None
    opening: Stylization | None = None  # the frames that start as an image does (noise by default)
    guided: Stylization | None = None  # the frames that start from a result
    shape: tuple[int, ...] | None = None
    for stage in range(start[0], temporal.passes):
        step = 1 if stage % 2 == 0 else -1
        count = clip.count() if step < 0 else None
        position = start[1] if stage == start[0] else 0
        while True:
            index = position if count is None else count - 1 - position
            if index < 0 or not clip.exists(index):
                break
            position += 1
            content = clip[index]
            if shape is None:
                shape = content.shape
            if content.shape != shape:
                raise NeuralStyleError(f"frame {index} is {content.shape[:2]}, the frames before {shape[:2]}")
            if base is None:
                objective = build_objective(weights, content, styles, config)
                base = TemporalObjective.extend(objective, weight)
                held = base.held(content.shape, len(offsets))
            assert held is not None
            frame_objective = base.with_content(seen(content), mean)
            turn = stage > 0 and position == 1  # the first frame of a later pass: the last of the pass before
            side = -step if turn else step  # it is held to the frames that pass held it to, as they still are
            neighbours = [index - side * offset for offset in offsets]
            earlier = [(clip[n], results[n]) if n >= 0 and clip.exists(n) else None for n in neighbours]
            for n, pair in zip(neighbours, earlier, strict=True):
                if pair is not None and pair[0].shape != content.shape:
                    raise NeuralStyleError(f"frame {index} is {content.shape[:2]}, frame {n} {pair[0].shape[:2]}")
            run: Stylization
            if stage == 0 and (earlier[0] is None or weight == 0):
                held.assign(frame_objective)  # no earlier result: no temporal term
                if opening is None:
                    opening = Stylization(weights, content, styles, config, objective=held)
                else:
                    opening.restart(content)
                run = opening
            else:
                from neural_style.flow import long_term_guide

                warped, masks = long_term_guide(content, earlier if weight > 0 else earlier[:1])
                if stage == 0:
                    initial = warped[0]
                elif turn or earlier[0] is None:
                    initial = np.asarray(results[index], np.float32)
                else:
                    initial = pass_start(warped[0], masks[0], results[index], temporal.pass_blend)
                if weight > 0:
                    inputs = np.stack([preprocess(seen(image), mean) for image in warped])
                    held.assign(frame_objective.with_previous(inputs, masks))
                else:
                    held.assign(frame_objective)
                if guided is None:
                    guided = Stylization(weights, content, styles, later, objective=held, initial=seen(initial))
                else:
                    guided.restart(content, initial=seen(initial))
                run = guided
            result: np.ndarray | None = None
            for record in run:
                if record.final:
                    result = record.image
                yield stage, index, record
            assert result is not None
            results[index] = result.astype(np.uint8)  # whole levels in 0..255: exact
            if temporal.passes == 1:
                for old in [i for i in results if i < index - max(offsets)]:
                    del results[old]
