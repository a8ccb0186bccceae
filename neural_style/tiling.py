"""Exact tiled evaluation: the loss and gradient of an image of any size in memory bounded by the tile size.

Every term of the objective is a sum over positions: the content and total-variation terms are sums of per-position
squares, and a Gram matrix is a sum of per-position outer products, G = sum_p f_p f_p^T / size. So the image is cut
into tiles, and each tile is run through the network with a *halo* of neighbouring pixels wide enough that the
features of its interior equal those of the whole image (the receptive field of the deepest layer used). Tile
origins, tile sizes and halos are multiples of 2^pools, so every pooling window of a tile is one of the whole
image's, and a tile that meets the image's edge is cut there, so its zero padding is the image's.

* **Pass 1** (forward only): each tile's interior contributes its Gram sums, content sums and total-variation sums;
  added up, they give the loss terms exactly.
* **Pass 2**: with those sums fixed, the loss's gradient with respect to each tile's sums is known
  (:meth:`TiledObjective.value_and_gradient` differentiates the small function from sums to terms); each tile is
  run again with a gradient tape and back-propagated from its interior's sums to its pixels, halo included. A pixel
  in several tiles' halos receives the sum of their contributions, which is the whole image's gradient.

Peak memory then depends on the tile, not the image; the price is a second forward pass (4/3 of the untiled work if
a backward pass costs two forward ones, 3/2 if it costs one, as measured on CPUs) and the halo's recomputation.
The results equal the untiled ones to float32 round-off.

The pieces: :func:`receptive_halo` (the halo and the alignment a network needs), :class:`Tiling` (tiled features
and Gram matrices, e.g. of a style image larger than memory allows, on the grid of
:class:`neural_style.memory.TileGrid`, where the geometry and the rule of when to tile live, without TensorFlow),
:class:`TiledImages` (an objective's targets computed so, :meth:`neural_style.objective.Objective.with_targets`) and
:class:`TiledObjective` (an :class:`neural_style.objective.Objective` evaluated tile by tile, with the interface the
optimisers take).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from neural_style import losses as L
from neural_style.errors import NeuralStyleError
from neural_style.memory import Tile, TileGrid, deepest_layer, tile_geometry, tile_grid
from neural_style.objective import Objective, WholeImages
from neural_style.vgg import VggFeatures

__all__ = ["TiledImages", "TiledObjective", "Tiling", "receptive_halo", "tiled_if_needed"]

# Called after every tile: (tiles done, tiles in all) of the evaluation in progress.
TileCallback = Callable[[int, int], None]


def receptive_halo(network: VggFeatures, layers: Sequence[str]) -> tuple[int, int]:
    """(halo, alignment) in input pixels for features of ``layers``: a tile cut with this halo on every side has
    interior features equal to the whole image's, when its origin and size are multiples of the alignment
    (:func:`neural_style.memory.tile_geometry` says how they are counted).

    For VGG-19 up to relu5_1: a halo of 80 pixels and an alignment of 16.
    """
    specs = network.layer_specs
    _, halo, align = tile_geometry(specs, deepest_layer([name for name, _, _ in specs], layers))
    return halo, align


def _ceil_div(a: tf.Tensor, b: int) -> tf.Tensor:
    return -((-a) // b)


class Tiling:
    """Features of whole images computed tile by tile, for the features of ``layers`` of ``network``.

    Args:
        network: the VGG layer.
        layers: the layers whose features are needed (the deepest decides the halo).
        tile_size: the side of a tile's interior in pixels; rounded down to a multiple of the alignment (16 for
            VGG up to relu5_1), at least one alignment.
        on_tile: called after every tile of :meth:`features` and :meth:`grams` with (tiles done, tiles in all).

    Attributes:
        grid: the tiles, their halo and the layers' strides (:class:`neural_style.memory.TileGrid`).
    """

    def __init__(
        self, network: VggFeatures, layers: Sequence[str], tile_size: int, on_tile: TileCallback | None = None
    ) -> None:
        self.network = network
        self.layers = tuple(layers)
        self.grid = TileGrid.of(network.layer_specs, self.layers, tile_size)
        self.on_tile = on_tile

    def interior(self, features: tf.Tensor, layer: str, geometry: tf.Tensor) -> tf.Tensor:
        """The part of a crop's ``layer`` features [N, h, w, C] in the tile's interior."""
        stride = self.grid.strides[layer]
        crop_top, crop_left, top, bottom, left, right = tf.unstack(geometry)
        return features[
            :,
            (top - crop_top) // stride : _ceil_div(bottom - crop_top, stride),
            (left - crop_left) // stride : _ceil_div(right - crop_left, stride),
        ]

    def interior_of(self, full: tf.Tensor, layer: str, geometry: tf.Tensor) -> tf.Tensor:
        """The part of a whole image's ``layer`` map [..., H_l, W_l(, C)] in the tile's interior (e.g. a target)."""
        stride = self.grid.strides[layer]
        _, _, top, bottom, left, right = tf.unstack(geometry)
        rows = slice(top // stride, _ceil_div(bottom, stride))
        cols = slice(left // stride, _ceil_div(right, stride))
        return full[:, rows, cols] if full.shape.rank == 3 else full[:, rows, cols, :]

    @staticmethod
    def crop(images: tf.Tensor | np.ndarray, tile: Tile) -> tf.Tensor:
        """The crop of ``tile`` from images [N, H, W, 3]."""
        (top, bottom), (left, right) = tile.crop_rows, tile.crop_cols
        return tf.convert_to_tensor(images[:, top:bottom, left:right], tf.float32)

    def features(self, images: tf.Tensor | np.ndarray, layers: Sequence[str] | None = None) -> dict[str, tf.Tensor]:
        """{layer: [N, H_l, W_l, C]} the features of whole images [N, H, W, 3], computed tile by tile: the same as
        ``network(images)``, in the memory of one tile's network pass plus the results."""
        layers = self.layers if layers is None else tuple(layers)
        height, width = int(images.shape[1]), int(images.shape[2])
        run = tf.function(lambda crop: self.network(crop, layers=layers), autograph=False, reduce_retracing=True)
        parts: dict[str, np.ndarray] = {}
        tiles = self.grid.tiles(height, width)
        for done, tile in enumerate(tiles, 1):
            found = run(self.crop(images, tile))
            geometry = tf.constant(tile.geometry)
            for layer in layers:
                part = self.interior(found[layer], layer, geometry).numpy()
                if layer not in parts:
                    shape = (part.shape[0], *self.grid.layer_size(layer, height, width), part.shape[3])
                    parts[layer] = np.zeros(shape, np.float32)
                stride = self.grid.strides[layer]
                top, left = tile.rows[0] // stride, tile.cols[0] // stride
                parts[layer][:, top : top + part.shape[1], left : left + part.shape[2]] = part
            if self.on_tile is not None:
                self.on_tile(done, len(tiles))
        return {layer: tf.constant(parts[layer]) for layer in layers}

    def grams(
        self, images: tf.Tensor | np.ndarray, layers: Sequence[str] | None = None, masks: np.ndarray | None = None
    ) -> dict[str, tf.Tensor]:
        """{layer: [N, C, C]} Gram matrices of whole images [N, H, W, 3] (:func:`neural_style.gram_matrix`), or with
        masks [M, H, W] {layer: [N, M, C, C]} those of the masked regions (:func:`neural_style.guided_gram_matrix`),
        computed tile by tile: an image larger than memory allows for one network pass."""
        layers = self.layers if layers is None else tuple(layers)
        height, width = int(images.shape[1]), int(images.shape[2])
        guides = None if masks is None else L.layer_masks(masks, self.network, layers)

        def tile_sums(crop: tf.Tensor, geometry: tf.Tensor) -> dict[str, tf.Tensor]:
            found = self.network(crop, layers=layers)
            return {
                layer: L.gram_sum(
                    self.interior(found[layer], layer, geometry),
                    None if guides is None else self.interior_of(guides[layer], layer, geometry),
                )
                for layer in layers
            }

        run = tf.function(tile_sums, autograph=False, reduce_retracing=True)
        sums: dict[str, tf.Tensor] = {}
        tiles = self.grid.tiles(height, width)
        for done, tile in enumerate(tiles, 1):
            part = run(self.crop(images, tile), tf.constant(tile.geometry))
            sums = part if not sums else {layer: sums[layer] + part[layer] for layer in layers}
            if self.on_tile is not None:
                self.on_tile(done, len(tiles))
        grams = {}
        for layer in layers:
            channels = sums[layer].shape[-1]
            if guides is None:
                size = np.prod(self.grid.layer_size(layer, height, width)) * channels
                grams[layer] = sums[layer] / float(size)
            else:
                grams[layer] = sums[layer] / L.mask_area(guides[layer], channels)[None, :, None, None]
        return grams


class TiledObjective:
    """An :class:`neural_style.objective.Objective` evaluated tile by tile, for images of one size.

    Call it like the objective (``objective(images, blend=..., style_weight=...)``) for the loss terms (pass 1), or
    use :meth:`value_and_gradient` for the terms and the gradient of their summed total (both passes). The optimisers
    (:mod:`neural_style.engines`) call these eagerly, tile after tile, instead of tracing the loss into one graph:
    that keeps one tile's activations in memory at a time. Content targets must be at the images' size.

    Args:
        objective: the objective, with its targets (content targets at the images' size).
        tile_size: the side of a tile's interior, see :class:`Tiling`.
        on_tile: called after every tile with (tiles done, tiles in all) of the current evaluation, e.g. to show
            progress when one evaluation takes minutes.
    """

    def __init__(self, objective: Objective, tile_size: int, on_tile: TileCallback | None = None) -> None:
        if objective.content_targets is None or objective.style_targets is None:
            raise NeuralStyleError("a tiled objective needs the objective's targets: build it with with_targets()")
        self.objective = objective
        self.tiling = Tiling(objective.network, objective.layers, tile_size)
        self.on_tile = on_tile
        content_layers, style_layers = objective.content_layers, objective.style_layers
        targets, masks = objective.content_targets, objective.content_masks
        tiling = self.tiling

        def tile_sums(crop: tf.Tensor, geometry: tf.Tensor) -> dict[str, dict[str, tf.Tensor]]:
            """The sums of one tile's interior: {"gram": {layer: [N, (S,) C, C]}, "content": {layer: [N]},
            "tv": {"rows": [N], "cols": [N]}}."""
            found = objective.network(crop, layers=objective.layers)
            grams = {
                layer: L.gram_sum(
                    tiling.interior(found[layer], layer, geometry),
                    None if masks is None else tiling.interior_of(masks[layer], layer, geometry),
                )
                for layer in style_layers
            }
            content = {
                layer: tf.reduce_sum(tf.square(difference), axis=(1, 2, 3))
                for layer in content_layers
                for difference in [
                    tiling.interior(found[layer], layer, geometry) - tiling.interior_of(targets[layer], layer, geometry)
                ]
            }
            return {"gram": grams, "content": content, "tv": _tv_sums(crop, geometry, self._size)}

        def tile_gradient(crop: tf.Tensor, geometry: tf.Tensor, weights: Mapping[str, Mapping[str, tf.Tensor]]):
            """The gradient with respect to the crop of sum(weights * the tile's sums)."""
            with tf.GradientTape() as tape:
                tape.watch(crop)
                sums = tile_sums(crop, geometry)
                surrogate = tf.add_n(
                    [
                        tf.reduce_sum(weights[kind][key] * value)
                        for kind, values in sums.items()
                        for key, value in values.items()
                    ]
                )
            return tape.gradient(surrogate, crop)

        def terms_and_weights(sums, blend, style_weight):
            """The terms from the sums, and the gradient of the summed total with respect to every sum."""
            with tf.GradientTape() as tape:
                tape.watch(sums)
                terms = self._terms(sums, blend, style_weight)
                total = tf.reduce_sum(terms["total"])
            return terms, tape.gradient(total, sums, unconnected_gradients=tf.UnconnectedGradients.ZERO)

        self._size = tf.Variable([0, 0], dtype=tf.int32, trainable=False, name="image_size")
        self._tile_sums = tf.function(tile_sums, autograph=False, reduce_retracing=True)
        self._tile_gradient = tf.function(tile_gradient, autograph=False, reduce_retracing=True)
        self._terms_and_weights = tf.function(terms_and_weights, autograph=False, reduce_retracing=True)
        self._terms_only = tf.function(self._terms, autograph=False, reduce_retracing=True)

    def _terms(
        self, sums: Mapping[str, Mapping[str, tf.Tensor]], blend: tf.Tensor, style_weight: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """{content, style, tv, total} [N] from the sums over the whole image; the objective's formulas."""
        objective, tiling = self.objective, self.tiling
        height, width = tf.unstack(self._size)
        masks, content_targets = objective.content_masks, objective.content_targets
        assert content_targets is not None

        def positions(layer: str) -> tf.Tensor:
            stride = tiling.grid.strides[layer]
            return tf.cast(_ceil_div(height, stride) * _ceil_div(width, stride), tf.float32)

        grams = {}
        for layer, value in sums["gram"].items():
            channels = value.shape[-1]
            if masks is None:
                grams[layer] = value / (positions(layer) * channels)
            else:
                grams[layer] = value / L.mask_area(masks[layer], channels)[None, :, None, None]
        assert objective.style_targets is not None
        style = L.style_loss(grams, objective.style_targets, objective.style_layers, blend)
        content = tf.add_n(
            [
                weight * sums["content"][layer] / (positions(layer) * content_targets[layer].shape[-1])
                for layer, weight in objective.content_layers.items()
            ]
        )
        h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
        tv = sums["tv"]["rows"] / ((h - 1) * w * 3) + sums["tv"]["cols"] / (h * (w - 1) * 3)
        return L.total_loss(
            content,
            style,
            tv,
            content_weight=objective.content_weight,
            style_weight=style_weight,
            tv_weight=objective.tv_weight,
        )

    def _params(self, blend: tf.Tensor | None, style_weight: float | tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor]:
        chosen = self.objective.blend if blend is None else blend
        weight = self.objective.style_weight if style_weight is None else style_weight
        return tf.convert_to_tensor(chosen, tf.float32), tf.convert_to_tensor(weight, tf.float32)

    def _sums(self, images: tf.Tensor | np.ndarray, tiles: list[Tile], total: int) -> dict[str, dict[str, tf.Tensor]]:
        sums: dict[str, dict[str, tf.Tensor]] = {}
        for done, tile in enumerate(tiles, 1):
            part = self._tile_sums(self.tiling.crop(images, tile), tf.constant(tile.geometry))
            sums = part if not sums else tf.nest.map_structure(tf.add, sums, part)
            if self.on_tile is not None:
                self.on_tile(done, total)
        return sums

    def _start(self, images: tf.Tensor | np.ndarray) -> list[Tile]:
        height, width = int(images.shape[1]), int(images.shape[2])
        self._size.assign([height, width])
        return self.tiling.grid.tiles(height, width)

    def __call__(
        self,
        images: tf.Tensor | np.ndarray,
        *,
        blend: tf.Tensor | None = None,
        style_weight: float | tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """The weighted terms of images [N, H, W, 3] (preprocessed), as :class:`neural_style.objective.Objective`."""
        tiles = self._start(images)
        sums = self._sums(images, tiles, len(tiles))
        return self._terms_only(sums, *self._params(blend, style_weight))

    def value_and_gradient(
        self,
        images: tf.Tensor | np.ndarray,
        *,
        blend: tf.Tensor | None = None,
        style_weight: float | tf.Tensor | None = None,
    ) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """The weighted terms of images [N, H, W, 3] and the gradient of their summed total, [N, H, W, 3]."""
        tiles = self._start(images)
        sums = self._sums(images, tiles, 2 * len(tiles))
        terms, weights = self._terms_and_weights(sums, *self._params(blend, style_weight))
        gradient = np.zeros(images.shape, np.float32)
        for done, tile in enumerate(tiles, len(tiles) + 1):
            part = self._tile_gradient(self.tiling.crop(images, tile), tf.constant(tile.geometry), weights)
            (top, bottom), (left, right) = tile.crop_rows, tile.crop_cols
            gradient[:, top:bottom, left:right] += part.numpy()
            if self.on_tile is not None:
                self.on_tile(done, 2 * len(tiles))
        return terms, tf.constant(gradient)


def _tv_sums(crop: tf.Tensor, geometry: tf.Tensor, size: tf.Variable) -> dict[str, tf.Tensor]:
    """The total-variation sums of a tile's interior: squared differences to the next row (for interior rows that
    have one in the image) and to the next column, [N] each."""
    crop_top, crop_left, top, bottom, left, right = tf.unstack(geometry)
    height, width = tf.unstack(size)
    last_row = tf.minimum(bottom, height - 1)  # the image's last row has no next row
    last_col = tf.minimum(right, width - 1)
    rows = crop[:, top - crop_top : last_row - crop_top + 1, left - crop_left : right - crop_left]
    cols = crop[:, top - crop_top : bottom - crop_top, left - crop_left : last_col - crop_left + 1]
    dy = rows[:, 1:] - rows[:, :-1]
    dx = cols[:, :, 1:] - cols[:, :, :-1]
    return {"rows": tf.reduce_sum(tf.square(dy), axis=(1, 2, 3)), "cols": tf.reduce_sum(tf.square(dx), axis=(1, 2, 3))}


class TiledImages:
    """:class:`neural_style.objective.TargetFeatures` for images of any size: an image larger than a tile (for the
    layers asked, :func:`neural_style.memory.tile_grid`) is run through ``network`` tile by tile (:class:`Tiling`),
    a smaller one whole. The targets are the same, in memory bounded by the tile.

    Args:
        network: the VGG layer.
        tile_size: the side of a tile's interior, see :class:`Tiling`.
        on_tile: called after each tile with (tiles done, tiles in all).
    """

    def __init__(self, network: VggFeatures, tile_size: int, on_tile: TileCallback | None = None) -> None:
        self.network = network
        self.tile_size = tile_size
        self.on_tile = on_tile
        self._whole = WholeImages(network)

    def _tiling(self, image: tf.Tensor, layers: Sequence[str]) -> Tiling | None:
        height, width = int(image.shape[1]), int(image.shape[2])
        if tile_grid(self.network.layer_specs, layers, self.tile_size, height, width) is None:
            return None
        return Tiling(self.network, layers, self.tile_size, self.on_tile)

    def features(self, image: tf.Tensor, layers: Sequence[str]) -> Mapping[str, tf.Tensor]:
        """{layer: [1, H_l, W_l, C]} activations of an image [1, H, W, 3]."""
        tiling = self._tiling(image, layers)
        return self._whole.features(image, layers) if tiling is None else tiling.features(image)

    def grams(self, image: tf.Tensor, layers: Sequence[str], mask: np.ndarray | None = None) -> Mapping[str, tf.Tensor]:
        """{layer: [1, C, C]} Gram matrices of an image [1, H, W, 3], or with a mask [H, W] those of its region."""
        tiling = self._tiling(image, layers)
        if tiling is None:
            return self._whole.grams(image, layers, mask)
        if mask is None:
            return tiling.grams(image)
        grams = tiling.grams(image, masks=np.asarray(mask, np.float32)[None])
        return {layer: value[:, 0] for layer, value in grams.items()}


def tiled_if_needed(
    objective: Objective, tile_size: int | None, height: int, width: int, on_tile: TileCallback | None = None
) -> Objective | TiledObjective:
    """The objective for images of ``height`` x ``width``: tiled when ``tile_size`` is given and they are larger
    than one tile (:func:`neural_style.memory.tile_grid`), else the objective itself."""
    if tile_grid(objective.network.layer_specs, objective.layers, tile_size, height, width) is None:
        return objective
    assert tile_size is not None
    return TiledObjective(objective, tile_size, on_tile)
