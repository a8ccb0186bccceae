"""The plan of a ``neural-style`` run, before any work: the coarse-to-fine stages, the memory guard and the tiles.

:class:`Stages` splits the iterations between the widths of ``--scales``; :func:`check_memory` refuses, within
seconds, a size whose estimated peak memory exceeds the budget (``--max_memory``, or what is available) and chooses
the tiles that make it fit; :func:`describe_tiles` is the line that tells a tiled run's tiles. Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from absl import flags

from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    from neural_style.matconvnet import VggWeights

__all__ = ["Stages", "check_memory", "describe_tiles", "max_memory", "stage_iterations"]


@dataclasses.dataclass(frozen=True)
class Stages:
    """The coarse-to-fine stages (--scales): the width and iterations of each (--stage_iterations, or the
    iterations shared equally); one stage without --scales."""

    widths: list[int]
    iterations: list[int]

    @classmethod
    def plan(cls, fv: flags.FlagValues, width: int, iterations: int) -> Stages:
        """The stages of --scales for an output ``width`` pixels wide and ``iterations`` in all."""
        from neural_style import coarse

        counts = stage_iterations(fv)
        if fv.scales is None:
            if counts is not None:
                raise NeuralStyleError("--stage_iterations needs --scales: give the stages' widths or their count")
            return cls([width], [iterations])
        try:
            values = [int(v) for v in fv.scales]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            raise NeuralStyleError(
                f"--scales must be a count or increasing widths in pixels, got '{','.join(fv.scales)}'"
            )
        if len(values) == 1:
            widths = coarse.stage_widths(width, values[0])
        else:
            coarse.check_widths(values, width)
            widths = values
        if counts is not None:
            if len(counts) != len(widths):
                raise NeuralStyleError(
                    f"--stage_iterations has {len(counts)} counts for the {len(widths)} stages of --scales "
                    f"({','.join(map(str, widths))} px); give one per stage"
                )
            return cls(widths, counts)
        return cls(widths, coarse.split_iterations(iterations, len(widths)))

    @property
    def offsets(self) -> list[int]:
        """The iterations done before each stage."""
        return [sum(self.iterations[:i]) for i in range(len(self.widths))]

    def describe(self) -> str | None:
        """``Coarse to fine: N at W px, ...``, or None for one stage."""
        if len(self.widths) == 1:
            return None
        return "Coarse to fine: " + ", ".join(
            f"{n} at {w} px" for w, n in zip(self.widths, self.iterations, strict=True)
        )


def stage_iterations(fv: flags.FlagValues) -> list[int] | None:
    """--stage_iterations as counts (each at least 1), or None when not given (or not a flag of ``fv``)."""
    values = fv.stage_iterations if "stage_iterations" in fv else None
    if values is None:
        return None
    try:
        counts = [int(v) for v in values]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise NeuralStyleError(
            f"--stage_iterations must be whole numbers of at least 1, one per stage, got '{','.join(values)}'"
        )
    return counts


def max_memory(fv: flags.FlagValues) -> int | None:
    """--max_memory in bytes, or None."""
    from neural_style.memory import parse_size

    if fv.max_memory is None:
        return None
    try:
        return parse_size(fv.max_memory)
    except ValueError:
        raise NeuralStyleError(f"--max_memory '{fv.max_memory}' is not a size; give e.g. 8G, 1.5G or 500M") from None


def check_memory(
    fv: flags.FlagValues, vgg: VggWeights, height: int, width: int, batch: int, config: StyleConfig | None = None
) -> int | None:
    """The run's tile size (--tile_size, or the largest tile --max_memory allows when the whole image does not fit;
    None: untiled), after refusing, within seconds, a size whose estimated peak exceeds the budget: --max_memory,
    capped by the memory available (unless --nomemory_guard). The refusal names the largest --width that fits."""
    from neural_style import memory

    config = config or StyleConfig()
    deepest = _deepest(vgg, config)
    layers: dict[str, Any] = {"batch": batch, "deepest": deepest, "content_layers": config.weighted_content_layers}
    extra = memory.lbfgs_bytes(height, width, config.lbfgs_memory) if config.optimizer == "lbfgs" else 0
    budget_flag = max_memory(fv)
    available = memory.available_bytes() if fv.memory_guard else None
    limits = [value for value in (budget_flag, available) if value is not None]
    budget = min(limits) if limits else None
    gib = 2**30
    tile = config.tile_size
    if tile is None and budget_flag is not None and budget is not None:
        try:
            tile = memory.choose_tile(vgg, height, width, budget, extra=extra, **layers)
        except ValueError as e:
            raise NeuralStyleError(
                f"{width}x{height} needs about {e.args[0] / gib:.1f} GiB even in the smallest tiles "
                f"({memory.MIN_TILE} px) but the budget is {budget / gib:.1f} GiB; raise --max_memory or use a "
                "smaller --width"
            ) from None
    # Checked whatever the budget: a --tile_size below the smallest tile is refused here.
    tiled = memory.tile_plan(vgg, deepest, tile, height, width) is not None
    if budget is None:
        return tile
    if tiled:
        assert tile is not None
        needed = memory.estimate_tiled_bytes(vgg, height, width, tile, **layers) + extra
    else:
        needed = memory.estimate_bytes(vgg, height, width, batch=batch, deepest=deepest) + extra
    if needed <= budget:
        return tile
    where = "the budget (--max_memory)" if budget_flag is not None and budget == budget_flag else "available"
    per_pixel = extra / (height * width)
    if tiled:
        assert tile is not None
        fits = memory.largest_tiled_width(vgg, height / width, budget, tile, extra_per_pixel=per_pixel, **layers)
        size = f"{width}x{height} (x{batch}) in {tile} px tiles"
    else:
        fits = memory.largest_width(
            vgg, height / width, budget, batch=batch, deepest=deepest, extra_per_pixel=per_pixel
        )
        size = f"{width}x{height} (x{batch})"
    hints = " or a smaller --batch_size" if batch > 1 else ""
    if config.optimizer == "lbfgs":
        hints += ", a smaller --lbfgs_memory or --optimizer adam"
    if not tiled:
        hints += ", or tile it with --max_memory"
    if fits < 1:  # no width fits: only a larger budget does (a tile's fixed cost alone exceeds this one)
        enough = f"{math.ceil(needed / 2**20)}M"
        advice = f"--max_memory {enough} or more" if where != "available" else f"a machine with {enough} free"
        raise NeuralStyleError(
            f"{size} needs about {needed / gib:.1f} GiB but {budget / gib:.1f} GiB is {where}, too little for any "
            f"width; give {advice}"
        )
    raise NeuralStyleError(
        f"{size} needs about {needed / gib:.1f} GiB but {budget / gib:.1f} GiB is {where}; "
        f"use --width {fits} or less{hints} (or --nomemory_guard)"
    )


def _deepest(vgg: VggWeights, config: StyleConfig) -> str:
    """The deepest layer a run's losses use (it decides the tiles' halo)."""
    from neural_style.memory import deepest_layer

    return deepest_layer(vgg.layer_names, config.loss_settings.layers)


def describe_tiles(vgg: VggWeights, config: StyleConfig, height: int, width: int) -> str | None:
    """``Tiles of N px (+H px halo): T per pass, ...`` for a tiled run at ``height`` x ``width``, else None."""
    from neural_style.memory import tile_plan

    plan = tile_plan(vgg, _deepest(vgg, config), config.tile_size, height, width)
    if plan is None:
        return None
    tile, halo = plan
    count = math.ceil(height / tile) * math.ceil(width / tile)
    return (
        f"Tiles of {tile} px (+{halo} px halo on each side): {count} per pass; an iteration runs 2 passes, "
        "a loss evaluation 1"
    )
