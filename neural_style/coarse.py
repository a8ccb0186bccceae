"""Coarse-to-fine: optimise at increasing sizes, each stage starting from the previous result upsampled.

Small stages are cheap (an iteration costs in proportion to the pixels) and settle the large structures, so the
full-size stage starts close to a good image and needs fewer iterations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.image_io import resize, resize_styles, scaled_size
from neural_style.matconvnet import VggWeights
from neural_style.progress import records_of
from neural_style.regions import Regions

if TYPE_CHECKING:
    from neural_style.stylization import Stylization

__all__ = ["MIN_STAGE_WIDTH", "coarse_to_fine", "split_iterations", "stage_runs", "stage_widths"]

# Stages narrower than this carry too little of the picture to be worth running.
MIN_STAGE_WIDTH = 32


def stage_widths(width: int, scales: int) -> list[int]:
    """``scales`` widths doubling up to ``width``: width / 2^(scales-1), ..., width / 2, width.

    Raises:
        NeuralStyleError: fewer than 1 scale, or a first stage narrower than :data:`MIN_STAGE_WIDTH`.
    """
    if scales < 1:
        raise NeuralStyleError(f"is {scales}; it must be at least 1", setting="scales")
    widths = [round(width / 2 ** (scales - 1 - i)) for i in range(scales)]
    if widths[0] < MIN_STAGE_WIDTH:
        raise NeuralStyleError(
            f"{scales} makes the first stage {widths[0]} px wide; use fewer scales (at least {MIN_STAGE_WIDTH} px)",
            setting="scales",
        )
    return widths


def check_widths(widths: Sequence[int], width: int) -> None:
    """Explicit stage widths must increase, start at :data:`MIN_STAGE_WIDTH` or more and end at ``width``."""
    if not widths or list(widths) != sorted(set(widths)) or widths[0] < MIN_STAGE_WIDTH or widths[-1] != width:
        raise NeuralStyleError(
            f"widths {','.join(map(str, widths))} must increase from at least {MIN_STAGE_WIDTH} px "
            f"to the output width {width}",
            setting="scales",
        )


def split_iterations(total: int, stages: int) -> list[int]:
    """The rule: iterations are shared equally between stages, the remainder going to the last (full-size) one.

    Equal shares keep the cheap coarse stages long enough to settle the composition while most of the wall time
    is still spent at full size (a stage at half the width costs about a quarter per iteration).
    """
    if total < stages:
        raise NeuralStyleError(
            f"{total} cannot be shared by {stages} scales; give at least {stages}", setting="iterations"
        )
    share = total // stages
    return [share] * (stages - 1) + [total - share * (stages - 1)]


def stage_runs(
    weights: VggWeights,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    config: StyleConfig,
    *,
    widths: Sequence[int],
    iterations: Sequence[int],
    style_scales: Sequence[float] | None = None,
    initial: np.ndarray | None = None,
    regions: Regions | None = None,
    first: int = 0,
    on_tile: Callable[[int, int], None] | None = None,
    reuse: Stylization | None = None,
) -> Iterator[tuple[int, Stylization]]:
    """Runs one stylization per stage, from the smallest width to the content's; yields the stages as runs, one at
    a time: (stage index, its :class:`Stylization`). :func:`coarse_to_fine` iterates them in turn and yields (stage
    index, each :class:`~neural_style.progress.Progress` of the stage).

    At each stage the content is resized to the stage width and each style to its scale x the stage width (the
    rule of a single run at that width). Stage 0 starts as a single run would (``initial``, noise blend, seed);
    later stages start from the previous stage's result, upsampled, without noise. The stopping rules
    (``stop_at_loss``, ``tolerance``) apply only in the last stage; colour control applies in every stage. A stage
    starts when it is asked for, from the result of the one before: iterate each to its end first. The stages are
    one run, restarted at each size with the stage's targets (its steps traced once), when the run can change
    size (:attr:`Stylization.resizable`: without regions or tiles); otherwise each stage builds a run of its own.

    Args:
        weights: the VGG parameters.
        content: [H, W, 3] RGB 0..255 at the final size; ``widths[-1]`` must be W.
        styles: S style images [H_s, W_s, 3] RGB 0..255 at their original sizes.
        config: settings; ``config.iterations`` is ignored in favour of ``iterations``.
        widths: the stage widths, increasing.
        iterations: iterations of each stage.
        style_scales: one per style (default 1.0 each).
        initial: [H, W, 3] start image at the final size, or None.
        first: the stage to begin with, e.g. to restore a saved stage into (its start is then the content resized,
            to be replaced by the restored image).
        regions: masks of where each style applies, resized with the images at every stage; None: everywhere.
        on_tile: with ``config.tile_size``, called after every tile of a tiled evaluation (see
            :class:`neural_style.Stylization`).
        reuse: a finished run (e.g. of an earlier job) to restart for the first stage when it can be
            (:meth:`Stylization.can_restart`, without regions): its network and traced steps serve again.
    """
    from neural_style.stylization import Stylization  # TensorFlow is imported only when a run starts

    if len(widths) != len(iterations) or not widths or widths[-1] != content.shape[1]:
        raise NeuralStyleError("coarse_to_fine needs one iteration count per width and the last width = content's")
    if not 0 <= first < len(widths):
        raise NeuralStyleError(f"there is no stage {first} among {len(widths)}")
    previous: np.ndarray | None = None
    run = reuse if regions is None else None
    for stage in range(first, len(widths)):
        width, count = widths[stage], iterations[stage]
        size = scaled_size(content.shape, width)
        stage_content = resize(content, size)
        stage_styles = resize_styles(styles, style_scales, width)
        # Stopping rules compare losses of the final size.
        stage_config = dataclasses.replace(config, iterations=count)
        if stage < len(widths) - 1:
            stage_config = dataclasses.replace(stage_config, stop_at_loss=None, tolerance=None)
        if stage == 0:
            start = None if initial is None else resize(initial, size)
        else:
            start = resize(previous if previous is not None else content, size)
            stage_config = dataclasses.replace(stage_config, initial_noiseblend=0.0)
        if run is not None and run.can_restart(weights, len(stage_styles), stage_config):  # traced once
            run.restart(stage_content, initial=start, styles=stage_styles, config=stage_config)
        else:
            run = None  # the caller's reference is the only one left while the next stage is built
            run = Stylization(
                weights, stage_content, stage_styles, stage_config, initial=start, regions=regions, on_tile=on_tile
            )
        yield stage, run
        previous = run.best_images()
        if previous is not None:
            previous = previous[0]


# The stages as one generator of (stage index, record), taking the arguments of stage_runs.
coarse_to_fine = records_of(stage_runs, "coarse_to_fine")
