"""The run's plan, without TensorFlow: the tiles an image is cut into, whether a run needs them, the deepest layer
a set of layers reaches, how much memory a run needs, how much there is and what fits.

The estimate counts the activations one optimisation step keeps for its backward pass, from the network's real
layer shapes, plus a fixed cost for TensorFlow and the weights. Its constants were fitted to peak RSS measured
on VGG-19 (CPU, float32): 1.06 GB at 256x341, 1.80 GB at 512x682, 3.01 GB at 768x1024; the estimate errs high.

A tiled run (:mod:`neural_style.tiling`) keeps one tile's activations (its interior plus the halo on every side)
instead of the image's, but still holds image-sized buffers: the image, the optimiser's state, the gradient, the
best image, the content targets. :class:`TileGrid` gives the halo, the alignment and the tiles from the layer shapes
alone; :func:`tile_grid` is the one rule for whether an image is cut into tiles. :mod:`neural_style.tiling` cuts by
them, and the commands plan and refuse runs by them before TensorFlow starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights

__all__ = [
    "MIN_TILE",
    "Tile",
    "TileGrid",
    "activation_floats_per_pixel",
    "available_bytes",
    "choose_tile",
    "deepest_layer",
    "estimate_bytes",
    "estimate_tiled_bytes",
    "largest_tiled_width",
    "largest_width",
    "layer_specs",
    "lbfgs_bytes",
    "parse_size",
    "round_tile",
    "tile_geometry",
    "tile_grid",
    "tile_plan",
]

_RUNTIME_BYTES = 700 * 2**20  # TensorFlow, Python and the images themselves
_STEP_FACTOR = 1.25  # activations kept for the backward pass + gradients in flight, relative to the forward pass
# Image-sized float32 [H, W, 3] buffers a tiled run holds at its peak, per image: the image, Adam's two moments,
# the gradient and its tensor copy, the update's temporaries, the best image and the saved image being scored.
_TILED_IMAGE_BUFFERS = 14
MIN_TILE = 64  # the smallest tile --max_memory chooses: below it the halo's recomputation costs over 10x

LayerSpec = tuple[str, str, "tuple[int, ...] | None"]


def layer_specs(weights: VggWeights) -> list[LayerSpec]:
    """(name, kind, kernel shape or None) of every layer of the network, as :func:`tile_geometry` takes them."""
    return [(layer.name, layer.kind, None if layer.kernel is None else layer.kernel.shape) for layer in weights.layers]


def deepest_layer(layer_names: Sequence[str], layers: Iterable[str]) -> str:
    """The one of ``layers`` that comes last among ``layer_names`` (the network's, from the input on): how far the
    network runs, and what decides a tile's halo and the memory estimate."""
    return max(layers, key=list(layer_names).index)


def round_tile(tile: int, align: int) -> int:
    """A tile size rounded down to a multiple of the alignment, at least one alignment."""
    return max(align, tile // align * align)


def tile_geometry(layers: Sequence[LayerSpec], deepest: str) -> tuple[dict[str, int], int, int]:
    """({layer: its stride 2^pools}, halo, alignment) in input pixels for features up to ``deepest``.

    The halo counts, from a cut edge inwards, the positions whose value differs from the whole image's: each k x k
    convolution adds (k - 1) / 2 positions; a 2x2, stride 2 pooling of c spoiled positions leaves ceil(c / 2). The
    deepest layer's count times its stride bounds every shallower layer's too. The halo is at least 1 (the total
    variation compares neighbours across a cut) and a multiple of the alignment, the deepest layer's stride, so
    that tiles cut on that grid meet every pooling window whole.

    Args:
        layers: (name, kind, kernel shape [h, w, in, out] or None) from the input on.
        deepest: the last layer needed.
    """
    strides: dict[str, int] = {}
    stride, spoiled = 1, 0
    for name, kind, shape in layers:
        if kind == "conv":
            assert shape is not None
            spoiled += (max(shape[0], shape[1]) - 1) // 2
        elif kind == "pool":
            spoiled = math.ceil(spoiled / 2)
            stride *= 2
        strides[name] = stride
        if name == deepest:
            break
    halo = max(spoiled * stride, 1)
    return strides, math.ceil(halo / stride) * stride, stride


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile: its interior (the positions it accounts for) and its crop (interior plus halo, cut at the image's
    edges), as [start, stop) rows and columns of the image."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    crop_rows: tuple[int, int]
    crop_cols: tuple[int, int]

    @property
    def geometry(self) -> np.ndarray:
        """int32 [6]: crop top and left, interior top, bottom, left and right (what the tile functions take)."""
        return np.array([self.crop_rows[0], self.crop_cols[0], *self.rows, *self.cols], np.int32)


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """How images are cut into tiles for the features of some layers (:meth:`of`).

    Attributes:
        strides: {layer: its stride 2^pools} up to the deepest of the layers.
        halo: pixels of context on every side of a tile's interior, a multiple of ``align``.
        align: the deepest layer's stride: tile origins and sizes are multiples of it.
        tile_size: the side of a tile's interior, a multiple of ``align``.
    """

    strides: Mapping[str, int]
    halo: int
    align: int
    tile_size: int

    @classmethod
    def of(cls, specs: Sequence[LayerSpec], layers: Iterable[str], tile_size: int) -> TileGrid:
        """The grid for features of ``layers`` of the network ``specs`` (:func:`layer_specs`), with ``tile_size``
        rounded down to a multiple of the alignment (16 for VGG up to relu5_1).

        Raises:
            NeuralStyleError: a tile size below the alignment (the smallest tile that can be cut).
        """
        if tile_size < 1:
            raise NeuralStyleError(f"is {tile_size}; it must be at least 1", setting="tile_size")
        deepest = deepest_layer([name for name, _, _ in specs], layers)
        strides, halo, align = tile_geometry(specs, deepest)
        if tile_size < align:
            # A smaller tile cannot be cut: tiles start on the deepest layer's grid so that its pooling windows
            # stay whole. Each tile is also evaluated with its halo, so small tiles mostly compute context.
            raise NeuralStyleError(
                f"is {tile_size}, smaller than the smallest tile, {align} px: tiles are cut on the {align} px grid "
                f"of {deepest} (its stride); give at least {align}, better {max(align, MIN_TILE)} or more, as each "
                f"tile is evaluated with {halo} px of context on every side",
                setting="tile_size",
            )
        return cls(strides, halo, align, round_tile(tile_size, align))

    def needs_tiles(self, height: int, width: int) -> bool:
        """Whether an image of this size is larger than one tile."""
        return max(height, width) > self.tile_size

    def tiles(self, height: int, width: int) -> list[Tile]:
        """The tiles of an image of ``height`` x ``width``, row by row."""

        def spans(size: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
            out = []
            for start in range(0, size, self.tile_size):
                stop = min(start + self.tile_size, size)
                out.append(((start, stop), (max(0, start - self.halo), min(size, stop + self.halo))))
            return out

        return [
            Tile(rows, cols, crop_rows, crop_cols)
            for rows, crop_rows in spans(height)
            for cols, crop_cols in spans(width)
        ]

    def layer_size(self, layer: str, height: int, width: int) -> tuple[int, int]:
        """The size of ``layer``'s feature map for an input of ``height`` x ``width`` (SAME pooling rounds up)."""
        stride = self.strides[layer]
        return -(-height // stride), -(-width // stride)


def tile_grid(
    specs: Sequence[LayerSpec], layers: Iterable[str], tile_size: int | None, height: int, width: int
) -> TileGrid | None:
    """The grid an image of ``height`` x ``width`` is cut by for features of ``layers``; None when it is evaluated
    whole: no tile size, or the image fits in one tile (one tile would only add a second pass). The one rule of
    when a run is tiled, for the run itself (:func:`neural_style.tiling.tiled_if_needed`), its targets and its plan
    (:func:`tile_plan`)."""
    if tile_size is None:
        return None
    grid = TileGrid.of(specs, layers, tile_size)
    return grid if grid.needs_tiles(height, width) else None


def parse_size(text: str) -> int:
    """Bytes of a size such as ``8G``, ``1.5G``, ``500M``, ``64K`` or ``1000000`` (binary units: G = 2^30).

    Raises:
        ValueError: not a positive size.
    """
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = units.get(value[-1:], 1)
    number = float(value[:-1] if value[-1:] in units else value)
    if not (math.isfinite(number) and number * scale >= 1):
        raise ValueError(text)
    return int(number * scale)


def _output_floats(weights: VggWeights) -> Iterator[tuple[str, float]]:
    """(layer, floats of its output per input pixel: its channels over its stride squared), from the input on."""
    area, channels = 1.0, 3
    for layer in weights.layers:
        if layer.kind == "conv":
            assert layer.kernel is not None
            channels = layer.kernel.shape[3]
        elif layer.kind == "pool":
            area /= 4
        yield layer.name, area * channels


def activation_floats_per_pixel(weights: VggWeights, deepest: str) -> float:
    """Floats of activations per input pixel of the layers up to ``deepest`` (conv, relu and pool outputs)."""
    total = 0.0
    for name, floats in _output_floats(weights):
        total += floats
        if name == deepest:
            break
    return total


def estimate_bytes(weights: VggWeights, height: int, width: int, *, batch: int = 1, deepest: str = "relu5_1") -> int:
    """Estimated peak memory of optimising ``batch`` images of ``height`` x ``width`` through ``deepest``."""
    weight_bytes = sum(layer.kernel.nbytes for layer in weights.layers if layer.kernel is not None)
    activations = activation_floats_per_pixel(weights, deepest) * height * width * batch * 4 * _STEP_FACTOR
    return int(_RUNTIME_BYTES + weight_bytes + activations)


def largest_width(
    weights: VggWeights,
    aspect: float,
    available: int,
    *,
    batch: int = 1,
    deepest: str = "relu5_1",
    extra_per_pixel: float = 0.0,
) -> int:
    """The largest width whose estimate (plus ``extra_per_pixel`` bytes per pixel, e.g. L-BFGS's) fits in
    ``available`` bytes, for images of height = aspect x width."""
    fixed = estimate_bytes(weights, 0, 0, batch=batch, deepest=deepest)
    per_pixel = activation_floats_per_pixel(weights, deepest) * batch * 4 * _STEP_FACTOR + extra_per_pixel
    if available <= fixed or per_pixel <= 0:
        return 0
    width = int(math.sqrt((available - fixed) / (per_pixel * aspect)))

    def needed(w: int) -> float:
        h = int(aspect * w)
        return estimate_bytes(weights, h, w, batch=batch, deepest=deepest) + extra_per_pixel * h * w

    while width > 0 and needed(width) > available:
        width -= 1  # the square root is rounded; step down until the estimate really fits
    return width


def lbfgs_bytes(height: int, width: int, history: int, batch: int = 1) -> int:
    """What L-BFGS adds (:mod:`neural_style.lbfgs`), per image of a batch: 2 x ``history`` correction vectors and 6
    more of the image's size (the iterate, its gradient, the direction, the trial point and the gradients of the
    last two trials), in float32."""
    return int((2 * history + 6) * height * width * 3 * 4 * batch)


def tile_plan(weights: VggWeights, deepest: str, tile: int | None, height: int, width: int) -> tuple[int, int] | None:
    """(tile rounded down to the alignment, halo) when an image of ``height`` x ``width`` is evaluated in tiles of
    ``tile`` for features up to ``deepest``; None when it is not (:func:`tile_grid`)."""
    grid = tile_grid(layer_specs(weights), [deepest], tile, height, width)
    return None if grid is None else (grid.tile_size, grid.halo)


def _crop(tile: int, halo: int, size: int) -> int:
    return min(size, tile + 2 * halo)


def estimate_tiled_bytes(
    weights: VggWeights,
    height: int,
    width: int,
    tile: int,
    *,
    batch: int = 1,
    deepest: str = "relu5_1",
    content_layers: Sequence[str] = ("relu4_2",),
) -> int:
    """Estimated peak memory of optimising ``batch`` images of ``height`` x ``width`` in tiles of ``tile`` pixels.

    One tile's activations (its interior plus the halo on each side, as :func:`estimate_bytes` counts them), the
    image-sized buffers the run holds and the content targets (at the content layers' sizes).
    """
    grid = TileGrid.of(layer_specs(weights), [deepest], tile)
    crop = _crop(grid.tile_size, grid.halo, height), _crop(grid.tile_size, grid.halo, width)
    tile_bytes = estimate_bytes(weights, crop[0], crop[1], batch=batch, deepest=deepest)
    buffers = _TILED_IMAGE_BUFFERS * height * width * 3 * 4 * batch
    outputs = dict(_output_floats(weights))
    # The targets are computed into an array, then copied into a tensor.
    targets = sum(outputs[layer] for layer in content_layers) * height * width * 4 * 2
    return int(tile_bytes + buffers + targets)


def choose_tile(
    weights: VggWeights,
    height: int,
    width: int,
    budget: int,
    *,
    batch: int = 1,
    deepest: str = "relu5_1",
    content_layers: Sequence[str] = ("relu4_2",),
    extra: int = 0,
) -> int | None:
    """The tile size that keeps a run within ``budget`` bytes: None when the whole image fits untiled, else the
    largest tile (a multiple of the alignment, at least :data:`MIN_TILE`) whose estimate fits.

    Args:
        extra: bytes the run needs besides (e.g. :func:`lbfgs_bytes`).

    Raises:
        ValueError: not even the smallest tile fits; the message gives the smallest budget that would.
    """
    if estimate_bytes(weights, height, width, batch=batch, deepest=deepest) + extra <= budget:
        return None
    _, _, align = tile_geometry(layer_specs(weights), deepest)
    smallest = math.ceil(MIN_TILE / align) * align

    def needed(tile: int) -> int:
        estimate = estimate_tiled_bytes(
            weights, height, width, tile, batch=batch, deepest=deepest, content_layers=content_layers
        )
        return estimate + extra

    if needed(smallest) > budget:
        raise ValueError(needed(smallest))
    tile = smallest
    while tile + align <= max(height, width) and needed(tile + align) <= budget:
        tile += align
    return tile


def largest_tiled_width(
    weights: VggWeights,
    aspect: float,
    budget: int,
    tile: int,
    *,
    batch: int = 1,
    deepest: str = "relu5_1",
    content_layers: Sequence[str] = ("relu4_2",),
    extra_per_pixel: float = 0.0,
) -> int:
    """The largest width whose tiled estimate (tiles of ``tile``) fits in ``budget`` bytes, for images of height =
    aspect x width; 0 when none does."""

    def fits(w: int) -> bool:
        h = max(1, int(aspect * w))
        estimate = estimate_tiled_bytes(
            weights, h, w, tile, batch=batch, deepest=deepest, content_layers=content_layers
        )
        return estimate + extra_per_pixel * h * w <= budget

    low, high = 0, 1
    while fits(high):
        low, high = high, high * 2
        if high > 2**20:
            return low
    while high - low > 1:  # the estimate grows with the width: bisect
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def available_bytes(meminfo: str = "/proc/meminfo", cgroup_files: Sequence[str] | None = None) -> int | None:
    """Memory this process can still use: MemAvailable, capped by a cgroup limit; None when unknown."""
    values = []
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    values.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for path in cgroup_files or ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            used = _cgroup_usage(os.path.dirname(path))
            values.append(int(text) - used)
    return min(values) if values else None


def _cgroup_usage(directory: str) -> int:
    for name in ("memory.current", "memory.usage_in_bytes"):
        try:
            with open(os.path.join(directory, name), encoding="ascii") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            continue
    return 0
