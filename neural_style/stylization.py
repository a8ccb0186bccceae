"""A stylization run: the objective and its targets built once, the loop, best-image tracking; yields progress.

Nothing here prints or writes files: :func:`stylize` (and :class:`Stylization`, the same run as an object whose
state can be saved) yields :class:`Progress` records and the caller decides what to show and save. The loop drives
any :class:`neural_style.engines.Engine` the same way; :func:`sweep` runs many candidates (style blends x style
weights) as batches that share one objective (:func:`sweep_runs`: the same batches as :class:`Stylization` objects).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from neural_style.color import color_inputs, luminance_image, preserve_colors
from neural_style.config import TERMS, TOLERANCE_WINDOW, Candidate, StyleConfig
from neural_style.engines import make_engine
from neural_style.errors import NeuralStyleError, NonFiniteLossError
from neural_style.image_io import to_uint8
from neural_style.matconvnet import VggWeights
from neural_style.objective import Objective
from neural_style.progress import Progress, iterated, records_of
from neural_style.regions import Regions
from neural_style.resizable import resizable
from neural_style.tiling import TiledImages, tiled_if_needed
from neural_style.vgg import preprocess, unprocess

__all__ = [
    "NOISE_SCALE",
    "RESTART_SETTINGS",
    "Stylization",
    "build_objective",
    "initial_image",
    "stylize",
    "sweep",
    "sweep_runs",
]

# Standard deviation of the initial noise in preprocessed (mean-subtracted 0..255) units, as in neural-style.
NOISE_SCALE = 0.256


def build_objective(
    weights: VggWeights,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    config: StyleConfig,
    *,
    regions: Regions | None = None,
    on_tile: Callable[[int, int], None] | None = None,
    network_of: Objective | None = None,
) -> Objective:
    """neural-style's objective for one content image and S style images, its targets computed once.

    The network takes preprocessed images (the optimised image lives in that space); the objective's default blend
    and style weight are the config's, for one image (a batch of candidates gives its own per call). The targets
    are those of the images as ``config.preserve_colors`` has them seen (:func:`neural_style.color.color_inputs`).

    Args:
        weights: the VGG parameters.
        content: [H, W, 3] RGB 0..255.
        styles: S arrays [H_s, W_s, 3] RGB 0..255, already at the scale wanted.
        config: the run's settings.
        regions: masks of where each style applies and where it is taken from, resized here to ``content`` and
            ``styles``; None: every style everywhere.
        on_tile: with ``config.tile_size``, called after each tile of the targets' computation with (tiles done,
            tiles in all).
        network_of: an objective of the same settings whose network computes the targets (and serves the new
            objective), e.g. at another size; None builds the network.
    """
    if not styles:
        raise NeuralStyleError("no style images given; pass at least one")
    if min(content.shape[:2]) < 2:  # total variation needs neighbours in both directions
        height, width = content.shape[:2]
        raise NeuralStyleError(f"the content image is {width}x{height} pixels; it needs at least 2x2")
    config.validate(len(styles), weights.layer_names)
    content_masks = style_masks = None
    if regions is not None:
        regions.check(content.shape, [style.shape for style in styles])
        content_masks = regions.content_at(content.shape[:2])
        style_masks = regions.styles_at([style.shape for style in styles])
        resized = [
            *(content_masks if content_masks is not None else []),
            *(m for m in style_masks or [] if m is not None),
        ]
        if any(not float(mask.sum()) > 0 for mask in resized):
            raise NeuralStyleError(
                f"a mask covers too little to survive resizing to the images ({content.shape[1]} px wide); "
                "widen its region or the image"
            )
    content, styles = color_inputs(np.asarray(content, np.float32), list(styles), config.color_mode)
    objective = network_of or Objective.from_settings(weights, config.loss_settings, preprocessed=True)
    mean = weights.mean_pixel
    return objective.with_targets(
        content=preprocess(np.asarray(content, np.float32), mean),
        styles=[preprocess(np.asarray(style, np.float32), mean) for style in styles],
        blend=config.style_blend_weights,
        content_masks=content_masks,
        style_masks=style_masks,
        features=None if config.tile_size is None else TiledImages(objective.network, config.tile_size, on_tile),
    )


# What may differ between the runs of one Stylization (restart): how long it runs, from where, and what it reports.
RESTART_SETTINGS = (
    "iterations",
    "stop_at_loss",
    "tolerance",
    "initial_noiseblend",
    "seed",
    "print_iterations",
    "checkpoint_iterations",
)


def _same_optimisation(config: StyleConfig, new: StyleConfig) -> bool:
    """Whether ``new`` differs from ``config`` only in :data:`RESTART_SETTINGS` (a restart keeps the objective and
    the optimiser)."""
    kept = {name: getattr(config, name) for name in RESTART_SETTINGS}
    return dataclasses.replace(new, **kept) == config


def _check_same_optimisation(config: StyleConfig, new: StyleConfig) -> None:
    """Raises NeuralStyleError unless :func:`_same_optimisation`."""
    if not _same_optimisation(config, new):
        raise NeuralStyleError(
            f"a restart may change only {', '.join(RESTART_SETTINGS)}; build a new run for other settings"
        )


def initial_image(
    content: np.ndarray,
    mean_pixel: np.ndarray,
    *,
    initial: np.ndarray | None = None,
    noiseblend: float | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """The start image, preprocessed, as neural-style makes it.

    ``base * (1 - noiseblend) + noise * noiseblend`` with noise N(0, 1) x 0.256 and base the initial image if
    given, else the content image; noiseblend defaults to 0 with an initial image and to 1 (pure noise) without.

    Args:
        content: [H, W, 3] RGB 0..255.
        mean_pixel: [3].
        initial: [H, W, 3] RGB 0..255 or None.
        noiseblend: share of noise in [0, 1], or None for the default.
        seed: seed of the noise; None draws a fresh one.

    Returns:
        [1, H, W, 3] float32, preprocessed.
    """
    base = content if initial is None else initial
    if base.shape != content.shape:
        raise NeuralStyleError(f"the initial image is {base.shape[:2]} but the content is {content.shape[:2]}")
    if noiseblend is None:
        noiseblend = 0.0 if initial is not None else 1.0
    noise = np.random.default_rng(seed).standard_normal((1, *content.shape), dtype=np.float32) * NOISE_SCALE
    start = preprocess(np.asarray(base, np.float32)[None], mean_pixel) * (1.0 - noiseblend) + noise * noiseblend
    return start.astype(np.float32)


class Stylization:
    """One optimisation run; iterate over it for :class:`Progress` records.

    The run is judged by the image it would save: the best image, ``stop_at_loss`` and ``tolerance`` use the loss of
    the result as written to a file (clipped to 0..255, rounded to whole grey levels, averaged with
    ``average_decay``, colours preserved if asked), not the optimiser's own loss of its unclipped iterate. The
    optimiser's trajectory is the same either way (neural-style's by default); what it costs is one forward pass
    per scored iteration: at checkpoints and the end, and at every iteration when a stopping rule is set.

    Its whole state (images, optimiser state, iteration, best images and their losses, the running average, recent
    loss history) lives in TensorFlow variables collected in :attr:`state`, a ``tf.train.Checkpoint``, so a run can
    be saved between records and resumed later. ``state`` is None when the engine cannot be saved (Adam split
    across devices). A restored run continues exactly as an uninterrupted one (L-BFGS's history is part of the
    engine's state).

    The best (lowest total loss) images are tracked at every checkpoint iteration and at the end, as in
    neural-style; the last record's ``images`` are the result. :func:`stylize` is the same run as a generator: it
    builds the run when first asked for a record, then yields the run's records.

    Args:
        weights: the VGG parameters.
        content: [H, W, 3] RGB 0..255.
        styles: S arrays [H_s, W_s, 3] RGB 0..255.
        config: settings; neural-style's defaults when None.
        initial: [H, W, 3] RGB 0..255 start image, or None (see :func:`initial_image`).
        candidates: images optimised together as one batch, each with its own style blend and style weight;
            None: one image with the config's blend and style weight.
        objective: from :func:`build_objective` for these images and config, to reuse its network and targets
            (e.g. when a large sweep runs in chunks); None builds one.
        strategy: a ``tf.distribute`` strategy with several replicas (e.g. ``MirroredStrategy`` over GPUs) to split
            the candidates across; the objective is then built in its scope. None: the default device.
        regions: masks of where each style applies (and where in its image it is taken from), at any size of the
            images' aspect ratios; None: every style everywhere (see :mod:`neural_style.regions`).
        on_tile: called with (tiles done, tiles in all) after every tile of an evaluation, when ``config.tile_size``
            tiles it.

    Iterating it yields a :class:`Progress` of the start images (iteration 0, with their losses; not after a
    restore), then one after every step.

    Raises:
        NeuralStyleError: bad settings.
        NonFiniteLossError: the loss became NaN or infinite (while iterating); it carries the best images seen so
            far.
    """

    def __init__(
        self,
        weights: VggWeights,
        content: np.ndarray,
        styles: Sequence[np.ndarray],
        config: StyleConfig | None = None,
        *,
        initial: np.ndarray | None = None,
        candidates: Sequence[Candidate] | None = None,
        objective: Objective | None = None,
        strategy: tf.distribute.Strategy | None = None,
        regions: Regions | None = None,
        on_tile: Callable[[int, int], None] | None = None,
    ) -> None:
        """Builds the objective, targets and start images (see the class for the arguments)."""
        config = config or StyleConfig()
        config.validate(len(styles))
        self._held: Objective | None = None  # the targets in variables: a restart may change the size
        if objective is None:
            with strategy.scope() if strategy is not None else contextlib.nullcontext():
                objective = build_objective(weights, content, styles, config, regions=regions, on_tile=on_tile)
            if strategy is None and regions is None and config.tile_size is None:
                objective = self._held = objective.held_targets()
        if candidates is None:  # one image with the objective's blend and the config's style weight
            blends = np.asarray(objective.blend, np.float32).reshape(1, -1)
            style_weights = np.asarray([config.style_weight], np.float32)
        else:
            blends = np.asarray([c.blend for c in candidates], np.float32).reshape(len(candidates), -1)
            style_weights = np.asarray([c.style_weight for c in candidates], np.float32)
        n_styles = int(np.asarray(objective.blend).shape[-1])
        if not len(blends) or blends.shape[1] != n_styles:
            raise NeuralStyleError(f"give one or more candidates, each with {n_styles} blend weights (one per style)")
        n = len(blends)
        params = {"blend": blends, "style_weight": style_weights}
        self._mean = np.asarray(weights.mean_pixel, np.float32)
        self._weights = weights
        self.config = config
        self._content = content
        self._styles = list(styles)
        self._engine = make_engine(
            tiled_if_needed(objective, config.tile_size, content.shape[0], content.shape[1], on_tile),
            self._start(content, initial, n),
            params,
            config,
            bounds=(-self._mean, 255.0 - self._mean),
            strategy=strategy,
        )
        shape = (n, *content.shape)
        self._iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="iteration")
        self._best = resizable(np.zeros(shape, np.float32), name="best")
        self._best_terms = tf.Variable(np.full((len(TERMS), n), np.inf, np.float32), trainable=False, name="terms")
        self._has_best = tf.Variable(False, trainable=False, name="has_best")
        self._history = tf.Variable(np.zeros(TOLERANCE_WINDOW + 1, np.float32), trainable=False, name="history")
        self._average = None
        if config.average_decay is not None:
            self._average = resizable(np.zeros(shape, np.float32), name="average")
        engine_state = self._engine.state
        self.state: tf.train.Checkpoint | None = None
        if engine_state is not None:
            self.state = tf.train.Checkpoint(
                engine=engine_state,
                iteration=self._iteration,
                best=self._best,
                best_terms=self._best_terms,
                has_best=self._has_best,
                history=self._history,
                **({} if self._average is None else {"average": self._average}),
            )

    def _start(self, content: np.ndarray, initial: np.ndarray | None, n: int) -> np.ndarray:
        """The start images [n, H, W, 3], preprocessed (:func:`initial_image` with the config's noise and seed)."""
        config = self.config
        start = initial_image(
            content, self._mean, initial=initial, noiseblend=config.initial_noiseblend, seed=config.seed
        )
        return np.repeat(start, n, axis=0)

    @property
    def resizable(self) -> bool:
        """Whether :meth:`restart` can change the size and styles: the run built its objective itself, without
        regions, tiles or a distribution strategy, and holds its targets in variables."""
        return self._held is not None

    def can_restart(self, weights: VggWeights, styles: int, config: StyleConfig) -> bool:
        """Whether :meth:`restart` can make this a run of ``config`` with ``styles`` style images of any sizes on
        the network ``weights`` (the same object as this run's): it is :attr:`resizable`, with as many styles and
        settings that differ only in :data:`RESTART_SETTINGS`."""
        return (
            self.resizable
            and weights is self._weights
            and styles == len(self._styles)
            and _same_optimisation(self.config, config)
        )

    def restart(
        self,
        content: np.ndarray,
        *,
        initial: np.ndarray | None = None,
        styles: Sequence[np.ndarray] | None = None,
        config: StyleConfig | None = None,
    ) -> None:
        """Makes this a new run of the same settings, reusing the compiled steps: the engine starts again from the
        new start images with a fresh optimiser state, and the iteration count, best images, loss history and
        average start afresh.

        The content image must be of the first one's size, unless the run is :attr:`resizable`: its targets are
        then computed here for the new content (and ``styles``), at any size, and assigned to the variables its
        steps read, so nothing is traced again (the stages of coarse-to-fine). Otherwise a caller that changes the
        targets keeps them in variables of its own and assigns them before this (video frames:
        :mod:`neural_style.temporal`).

        Args:
            content: [H, W, 3] RGB 0..255 (its colours are kept with luminance transfer).
            initial: [H, W, 3] RGB 0..255 start image, or None (see :func:`initial_image`).
            styles: as many style images [H_s, W_s, 3] RGB 0..255 as before, for new targets (a :attr:`resizable`
                run), or None to keep the styles.
            config: the new run's settings: only those of :data:`RESTART_SETTINGS` (the iteration count, the
                stopping rules, the start noise and seed, how often it reports) may differ from this run's; None
                keeps them.
        """
        if config is not None:
            _check_same_optimisation(self.config, config)
        new_targets = content.shape != self._content.shape or styles is not None
        if new_targets and self._held is None:
            raise NeuralStyleError(
                "this run cannot change size or styles (it was given its objective, or has regions, tiles or a "
                f"strategy): a restart needs a content image of {self._content.shape[:2]}, not "
                f"{content.shape[:2]}, and the run's styles; build a new run for others"
            )
        if styles is not None and len(styles) != len(self._styles):
            raise NeuralStyleError(
                f"a restart keeps the number of styles ({len(self._styles)}); build a new run for {len(styles)}"
            )
        config = config or self.config
        if new_targets:  # computed before anything changes: a bad image leaves the run as it was
            assert self._held is not None
            kept = list(self._styles if styles is None else styles)
            self._held.assign_targets(build_objective(self._weights, content, kept, config, network_of=self._held))
            self._styles = kept
        self.config = config
        self._content = content
        n = int(self._best.shape[0])
        self._engine.reset(self._start(content, initial, n))
        self._iteration.assign(0)
        self._best.assign(tf.zeros((n, *content.shape)))
        self._best_terms.assign(tf.fill(self._best_terms.shape, np.inf))
        self._has_best.assign(False)
        self._history.assign(tf.zeros_like(self._history))
        if self._average is not None:
            self._average.assign(tf.zeros((n, *content.shape)))

    @property
    def iteration(self) -> int:
        """Iterations done so far (after a restore, those of the saved run)."""
        return int(self._iteration.numpy())

    def best_images(self) -> np.ndarray | None:
        """The best images seen at checkpoints so far, as saved (RGB 0..255 [N, H, W, 3]), or None before the first."""
        if not bool(self._has_best.numpy()):
            return None
        return self._best.numpy()

    def current_images(self) -> np.ndarray:
        """The images the run would save now (RGB 0..255 [N, H, W, 3]; averaged, clipped and rounded)."""
        return self._saved(self._output())

    def iterates(self) -> np.ndarray:
        """The images being optimised, RGB [N, H, W, 3], as the optimiser holds them: not averaged, clipped or
        rounded (Adam's may lie outside 0..255)."""
        return unprocess(self._engine.images(), self._mean).astype(np.float32)

    def _output(self) -> np.ndarray:
        """The images the run would save now, preprocessed: the iterates, or their bias-corrected average."""
        if self._average is None:
            return self._engine.images()
        decay = self.config.average_decay
        assert decay is not None
        return self._average.numpy() / np.float32(1.0 - decay ** max(self.iteration, 1))

    def _saved(self, images: np.ndarray) -> np.ndarray:
        """Preprocessed images -> exactly what a PNG of them holds: RGB, colours preserved if asked, whole grey levels
        in 0..255 (float32)."""
        rgb = unprocess(images, self._mean)
        if self.config.color_mode == "luminance":
            rgb = np.stack([preserve_colors(image, self._content) for image in rgb])
        return to_uint8(rgb).astype(np.float32)

    def _score(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The images the run would save now (RGB) and their loss terms (with luminance transfer: of their
        luminance, the image the objective judges)."""
        saved = self._saved(self._output())
        judged = saved
        if self.config.color_mode == "luminance":
            judged = np.stack([luminance_image(image) for image in saved])
        return saved, self._engine.evaluate(preprocess(judged, self._mean))

    def __iter__(self) -> Iterator[Progress]:
        try:
            yield from self._optimise()
        finally:
            self._engine.close()

    def _non_finite(self, what: str, losses: np.ndarray, k: int) -> NonFiniteLossError:
        return NonFiniteLossError(
            f"the loss became {losses.tolist()} {what} {k}; lower the learning rate or the loss weights",
            self.best_images(),
        )

    def _optimise(self) -> Iterator[Progress]:
        """The loop shared by every engine: steps, stopping rules, reports and best-image tracking."""
        engine, config = self._engine, self.config
        stopping = config.stop_at_loss is not None or config.tolerance is not None
        start_pending = self.iteration == 0  # the start's losses are the first row of a loss history
        for k in range(self.iteration + 1, config.iterations + 1):
            step_losses = engine.step()
            if start_pending:  # the first step evaluated the start images on its way
                yield Progress(0, config.iterations, losses=engine.start_losses)
                start_pending = False
            step_loss = step_losses["total"]
            if not np.isfinite(step_loss).all():
                raise self._non_finite("at iteration", step_loss, k)
            self._iteration.assign(k)
            if self._average is not None:
                decay = np.float32(self.config.average_decay)
                self._average.assign(decay * self._average.numpy() + (1 - decay) * engine.images())
            checkpoint = bool(config.checkpoint_iterations and k % config.checkpoint_iterations == 0)
            saved = terms = None
            worst = math.inf
            if stopping or checkpoint or k == config.iterations or engine.finished:
                saved, terms = self._score()
                if not np.isfinite(terms["total"]).all():
                    raise self._non_finite("after iteration", terms["total"], k)
                worst = float(np.max(terms["total"]))
                self._history.assign(tf.concat([self._history[1:], [worst]], axis=0))
            reached = config.stop_at_loss is not None and worst <= config.stop_at_loss
            final = k == config.iterations or reached or self._should_stop(k) or engine.finished
            printing = final or bool(config.print_iterations and k % config.print_iterations == 0)
            losses = engine.evaluate() if printing else None
            images = image_losses = None
            if checkpoint or final:
                assert saved is not None and terms is not None
                self._keep_best(saved, terms)
                images = self.best_images()
                image_losses = dict(zip(TERMS, self._best_terms.numpy(), strict=True))
            yield Progress(
                k,
                config.iterations,
                step_loss=step_loss,
                losses=losses,
                images=images,
                final=final,
                evaluations=engine.evaluations,
                step_losses=step_losses,
                image_losses=image_losses,
            )
            if final:
                return

    def _keep_best(self, saved: np.ndarray, terms: dict[str, np.ndarray]) -> None:
        """Keeps each image whose saved form has a lower total loss than the best so far."""
        improved = terms["total"] < self._best_terms.numpy()[-1]
        if improved.any():
            self._best.assign(np.where(improved[:, None, None, None], saved, self._best.numpy()))
            new = np.stack([terms[key] for key in TERMS]).astype(np.float32)
            self._best_terms.assign(np.where(improved[None], new, self._best_terms.numpy()))
            self._has_best.assign(True)

    def _should_stop(self, k: int) -> bool:
        """--tolerance: the (largest) saved-image loss improved by less than that fraction over the window."""
        history = self._history.numpy()
        if self.config.tolerance is not None and k > TOLERANCE_WINDOW:
            before = float(history[0])
            return before > 0 and (before - float(history[-1])) / before < self.config.tolerance
        return False


def sweep_runs(
    weights: VggWeights,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    config: StyleConfig,
    candidates: Sequence[Candidate],
    *,
    batch_size: int | None = None,
    initial: np.ndarray | None = None,
    strategy: tf.distribute.Strategy | None = None,
    regions: Regions | None = None,
) -> Iterator[tuple[int, Stylization]]:
    """Optimises all candidates, ``batch_size`` at a time (all at once when None), sharing one objective; yields
    each chunk as a run: (index of the chunk's first candidate, its :class:`Stylization`).

    Every chunk starts from the same initial image (same seed), so candidate i equals a run of that candidate
    alone. With a ``tf.distribute`` strategy of R replicas, each chunk is split R ways across its devices.
    :func:`sweep` iterates the runs in turn and yields (index of the chunk's first candidate, each
    :class:`Progress` of the chunk); holding the run also gives its images between records
    (:meth:`Stylization.best_images`, :meth:`Stylization.current_images`), e.g. to save the chunk in progress when
    the sweep is stopped early. Each run is built when the next chunk is asked for: finish (or abandon) one before
    asking for the next, and drop it, so that one chunk is held at a time.
    """
    if batch_size is not None and batch_size < 1:
        raise NeuralStyleError(f"is {batch_size}; it must be at least 1", setting="batch_size")
    config.validate(len(styles))
    if config.seed is None:  # every chunk must start from the same noise, as one batch would
        config = dataclasses.replace(config, seed=int(np.random.SeedSequence().generate_state(1)[0]))
    size = batch_size or len(candidates)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        objective = build_objective(weights, content, styles, config, regions=regions)
    for start in range(0, len(candidates), size):
        chunk = candidates[start : start + size]
        replicated = strategy is not None and len(chunk) >= strategy.num_replicas_in_sync
        run = Stylization(
            weights,
            content,
            styles,
            config,
            initial=initial,
            candidates=chunk,
            objective=objective,
            strategy=strategy if replicated else None,
        )
        yield start, run
        del run  # the caller's reference is the only one left while the next chunk is built


# The run and the sweep as generators of records, taking the arguments of Stylization and of sweep_runs.
stylize = iterated(Stylization, "stylize")
sweep = records_of(sweep_runs, "sweep")
