"""Tiled evaluation (neural_style.tiling): the halo worked out by hand, tiles that partition the image, and tiled
losses, gradients, targets and whole runs equal to the untiled ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from conftest import CHANNELS, he_scaled, write_vgg_mat

from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.gradients import value_and_gradient
from neural_style.losses import gram_matrix, guided_gram_matrix, layer_masks
from neural_style.matconvnet import read_matconvnet
from neural_style.stylization import Stylization, build_objective
from neural_style.tiling import TiledObjective, Tiling, receptive_halo
from neural_style.vgg import VggFeatures


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny He-scaled VGG-19 in both file layouts, and a VGG-16."""
    root = tmp_path_factory.mktemp("tiling")
    found = {}
    for name, options in (("new", {}), ("old", {"layout": "old"}), ("vgg16", {"vgg16": True})):
        path = root / f"{name}.mat"
        write_vgg_mat(path, channels=CHANNELS, tamper=he_scaled, **options)
        found[name] = read_matconvnet(path)
    return found


def _images(shape: tuple[int, ...], seed: int, low: float = 0.0, high: float = 255.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


# ------------------------------------------------------------------------------------------------ geometry


@pytest.mark.parametrize(
    ("vgg16", "deepest", "halo", "align"),
    [
        # relu1_1: one 3x3 conv spoils 1 position at a cut.
        (False, "relu1_1", 1, 1),
        # relu2_1: 2 convs (2), pool (1), conv (2) at stride 2: 4 px.
        (False, "relu2_1", 4, 2),
        # relu4_2: 2, 1, 3, 2, 6 (conv3_1..4), 3, 5 (conv4_1..2) at stride 8: 40 px.
        (False, "relu4_2", 40, 8),
        # relu5_1: ... 7 after conv4_4, pool 4, conv5_1 5 at stride 16: 80 px.
        (False, "relu5_1", 80, 16),
        # VGG-16 has 3 convs in blocks 3 and 4: 2, 1, 3, 2, 5, 3, 6, 3, 4 at stride 16: 64 px.
        (True, "relu5_1", 64, 16),
    ],
)
def test_halo_by_hand(networks: dict[str, Any], vgg16: bool, deepest: str, halo: int, align: int) -> None:
    weights = networks["vgg16" if vgg16 else "new"]
    network = VggFeatures.from_weights(weights, ["relu1_1", deepest])
    assert receptive_halo(network, ["relu1_1", deepest]) == (halo, align)


@pytest.mark.parametrize(("height", "width", "tile"), [(75, 101, 32), (16, 16, 16), (200, 33, 48), (97, 250, 100)])
def test_tiles_partition_the_image_on_the_pooling_grid(
    networks: dict[str, Any], height: int, width: int, tile: int
) -> None:
    network = VggFeatures.from_weights(networks["new"], ["relu5_1"])
    tiling = Tiling(network, ["relu5_1"], tile)
    assert tiling.grid.tile_size == max(16, tile // 16 * 16)  # 100 -> 96
    covered = np.zeros((height, width), np.int32)
    for t in tiling.grid.tiles(height, width):
        covered[t.rows[0] : t.rows[1], t.cols[0] : t.cols[1]] += 1
        for (start, stop), (crop_start, crop_stop), size in (
            (t.rows, t.crop_rows, height),
            (t.cols, t.crop_cols, width),
        ):
            assert start % 16 == 0 and crop_start % 16 == 0  # every pooling window is one of the image's
            assert crop_start == max(0, start - 80) and crop_stop == min(size, stop + 80)
            assert stop - start <= tiling.grid.tile_size
    assert (covered == 1).all()


def test_bad_tile_size(networks: dict[str, Any]) -> None:
    network = VggFeatures.from_weights(networks["new"], ["relu5_1"])
    with pytest.raises(NeuralStyleError, match="tile_size"):
        Tiling(network, ["relu5_1"], 0)
    with pytest.raises(NeuralStyleError, match="tile_size"):
        StyleConfig(tile_size=0).validate()


# ------------------------------------------------------------------------------------------------ exactness


def _untiled(objective: Any, images: np.ndarray, params: dict[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    x = tf.constant(images)
    terms, gradient = value_and_gradient(lambda: objective(x, **params), x)
    return {k: v.numpy() for k, v in terms.items()}, gradient.numpy()


def _assert_same(tiled: Any, untiled: Any, *, loss_rtol: float = 1e-5, gradient_rtol: float = 1e-4) -> None:
    (terms, gradient), (expected, expected_gradient) = tiled, untiled
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(terms[key]), value, rtol=loss_rtol, err_msg=key)
    scale = np.abs(expected_gradient).max()
    assert scale > 0
    assert np.abs(np.asarray(gradient) - expected_gradient).max() <= gradient_rtol * scale


CASES = {
    # name: (network, image size, tile size, config changes, number of styles)
    "max pooling, 2 styles": ("new", (75, 101), 32, {}, 2),
    "avg pooling, old layout": ("old", (61, 45), 16, {"pooling": "avg"}, 1),
    "tile of 48 (rounded to 48), odd size": ("new", (93, 77), 48, {}, 1),
    "interior tiles: shallow layers, small halo": (
        "new",
        (70, 90),
        16,
        {"content_layers": ("relu2_2",), "style_layers": ("relu1_1", "relu2_1")},
        2,
    ),
    "relu4_2 and relu3_1, avg pooling": (
        "old",
        (99, 66),
        16,
        {"pooling": "avg", "content_layers": ("relu4_2",), "style_layers": ("relu1_1", "relu3_1")},
        1,
    ),
    "VGG-16": ("vgg16", (50, 70), 32, {}, 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_tiled_loss_and_gradient_equal_the_untiled(networks: dict[str, Any], case: str) -> None:
    network, (height, width), tile, changes, n_styles = CASES[case]
    weights = networks[network]
    config = StyleConfig(**changes)
    styles = [_images((40 + 7 * i, 50, 3), seed=10 + i) for i in range(n_styles)]
    objective = build_objective(weights, _images((height, width, 3), seed=1), styles, config)
    # Two candidates with their own blends and style weights, as in a sweep.
    blend = np.random.default_rng(3).dirichlet(np.ones(n_styles), 2).astype(np.float32)
    params = {"blend": tf.constant(blend), "style_weight": tf.constant([500.0, 80.0])}
    images = _images((2, height, width, 3), seed=2, low=-120.0, high=140.0)
    tiled = TiledObjective(objective, tile)
    assert len(tiled.tiling.grid.tiles(height, width)) > 1
    _assert_same(tiled.value_and_gradient(images, **params), _untiled(objective, images, params))
    # Pass 1 alone gives the same terms.
    terms = tiled(images, **params)
    expected = objective(tf.constant(images), **params)
    np.testing.assert_allclose(terms["total"].numpy(), expected["total"].numpy(), rtol=1e-5)


@pytest.mark.slow
def test_interior_tiles_with_regions(networks: dict[str, Any]) -> None:
    """Guided Gram matrices: each tile's masked sums; the image is large enough for tiles with a halo all round."""
    weights = networks["new"]
    config = StyleConfig(content_layers=("relu2_2",), style_layers=("relu1_1", "relu2_1"))
    height, width = 60, 75
    styles = [_images((40, 50, 3), seed=10), _images((30, 30, 3), seed=11)]
    left = np.zeros((height, width), np.float32)
    left[:, :30] = 1.0
    left[:, 30:40] = 0.5  # a soft edge
    masks = np.stack([left, 1.0 - left])
    objective = build_objective(weights, _images((height, width, 3), seed=1), styles, config)
    objective = objective.with_targets(content_masks=masks)
    images = _images((1, height, width, 3), seed=2, low=-120.0, high=140.0)
    params = {"blend": tf.constant([0.4, 0.6]), "style_weight": tf.constant([500.0])}
    tiled = TiledObjective(objective, 16)
    assert any(t.crop_rows[0] > 0 and t.crop_rows[1] < height for t in tiled.tiling.grid.tiles(height, width))
    _assert_same(tiled.value_and_gradient(images, **params), _untiled(objective, images, params))


@pytest.mark.slow
@pytest.mark.parametrize(("deepest", "halo"), [("relu2_2", 6), ("relu4_2", 40), ("relu5_1", 80)])
def test_a_halo_one_step_short_is_not_exact(networks: dict[str, Any], deepest: str, halo: int) -> None:
    """The halo worked out above is needed: one alignment step less, and features next to the cuts change."""
    network = VggFeatures.from_weights(networks["new"], [deepest])
    image = tf.constant(_images((1, 200, 180, 3), seed=4) - 120.0)
    whole = network(image)[deepest].numpy()
    tiling = Tiling(network, [deepest], 16)
    assert tiling.grid.halo == halo
    scale = np.abs(whole).max()
    assert np.abs(tiling.features(image)[deepest].numpy() - whole).max() <= 1e-6 * scale
    tiling.grid = dataclasses.replace(tiling.grid, halo=tiling.grid.halo - tiling.grid.align)
    short = tiling.features(image)[deepest].numpy()
    # The effect of a cut fades with distance, but it is far above round-off.
    assert np.abs(short - whole).max() > 1e-3 * scale


@pytest.mark.slow
def test_bfloat16_tiles_are_as_close_to_float32_as_the_whole_image(networks: dict[str, Any]) -> None:
    """In bfloat16 the convolutions round to 8 bits; tiled or not, the terms land within a percent of float32's."""
    content, style = _images((50, 70, 3), seed=1), _images((40, 40, 3), seed=3)
    images = _images((1, 50, 70, 3), seed=2, low=-120.0, high=140.0)
    params = {"blend": tf.constant([1.0]), "style_weight": tf.constant([500.0])}
    results = {}
    for precision in ("float32", "bfloat16"):
        objective = build_objective(networks["new"], content, [style], StyleConfig(precision=precision))
        results[precision] = _untiled(objective, images, params)
        if precision == "bfloat16":
            terms, gradient = TiledObjective(objective, 32).value_and_gradient(images, **params)
            results["tiled"] = ({k: v.numpy() for k, v in terms.items()}, gradient.numpy())
    (exact, exact_gradient) = results["float32"]

    def errors(key: str) -> tuple[float, float]:
        terms, gradient = results[key]
        loss = abs(float(terms["total"][0]) / float(exact["total"][0]) - 1)
        return loss, float(np.linalg.norm(gradient - exact_gradient) / np.linalg.norm(exact_gradient))

    (loss, gradient), (whole_loss, whole_gradient) = errors("tiled"), errors("bfloat16")
    assert loss <= max(1.5 * whole_loss, 2e-3) and loss < 0.02
    # A gradient through 8-bit convolutions is rough (about a quarter off in L2 here, tiled or not).
    assert gradient <= 1.5 * whole_gradient


@pytest.mark.slow
def test_targets_of_large_images_by_tiles(networks: dict[str, Any]) -> None:
    weights = networks["new"]
    network = VggFeatures.from_weights(weights, ["relu1_1", "relu3_1", "relu4_2", "relu5_1"])
    image = tf.constant(_images((1, 83, 67, 3), seed=4) - 120.0)
    whole = network(image)
    tiling = Tiling(network, network.outputs, 16)
    features = tiling.features(image)
    for layer in network.outputs:
        np.testing.assert_allclose(features[layer].numpy(), whole[layer].numpy(), rtol=1e-5, atol=1e-4)
    grams = tiling.grams(image)
    for layer in network.outputs:
        np.testing.assert_allclose(grams[layer].numpy(), gram_matrix(whole[layer]).numpy(), rtol=1e-5)
    masks = np.stack([np.tri(83, 67, dtype=np.float32), np.full((83, 67), 0.25, np.float32)])
    guided = tiling.grams(image, masks=masks)
    guides = layer_masks(masks, network, network.outputs)
    for layer in network.outputs:
        expected = guided_gram_matrix(whole[layer], guides[layer]).numpy()
        np.testing.assert_allclose(guided[layer].numpy(), expected, rtol=1e-5)
    # The objective's targets with tile_size are these.
    content = _images((83, 67, 3), seed=4)
    config = StyleConfig()
    plain = build_objective(weights, content, [content], config)
    tiled = build_objective(weights, content, [content], dataclasses.replace(config, tile_size=16))
    for layer, value in plain.content_targets.items():
        np.testing.assert_allclose(tiled.content_targets[layer].numpy(), value.numpy(), rtol=1e-5, atol=1e-4)
    for layer, value in plain.style_targets.items():
        np.testing.assert_allclose(tiled.style_targets[layer].numpy(), value.numpy(), rtol=1e-5)


# ------------------------------------------------------------------------------------------------ whole runs


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_tiled_run_saves_the_same_image(networks: dict[str, Any], optimizer: str) -> None:
    weights = networks["new"]
    content, style = _images((45, 70, 3), seed=1), _images((50, 40, 3), seed=3)
    results = {}
    for tile in (None, 16):
        calls: list[tuple[int, int]] = []
        config = StyleConfig(iterations=5, seed=7, optimizer=optimizer, tile_size=tile, checkpoint_iterations=2)
        run = Stylization(weights, content, [style], config, on_tile=lambda *tiles, c=calls: c.append(tiles))
        records = list(run)
        results[tile] = records[-1]
        if tile is not None:
            tiles = len(Tiling(run_network(weights), ["relu5_1"], 16).grid.tiles(45, 70))
            assert tiles == 3 * 5
            # Every pass over the tiles reports each tile once, in order: the content targets (45x70), the style's
            # Gram matrices (50x40: 4 x 3 tiles), then 2 passes for each loss and gradient, 1 for each loss.
            passes = []
            for done, total in calls:
                if done == 1:
                    passes.append([])
                passes[-1].append((done, total))
            assert all(p == [(k, p[0][1]) for k in range(1, p[0][1] + 1)] for p in passes)
            totals = [p[0][1] for p in passes]
            assert totals[:3] == [tiles, 4 * 3, 2 * tiles] and set(totals[2:]) <= {tiles, 2 * tiles}
    plain, tiled = results[None], results[16]
    assert np.abs(plain.images - tiled.images).max() <= 1.0
    np.testing.assert_allclose(tiled.image_losses["total"], plain.image_losses["total"], rtol=1e-4)


def run_network(weights: Any) -> VggFeatures:
    return VggFeatures.from_weights(weights, ["relu4_2", "relu5_1"])


@pytest.mark.slow
def test_a_tiled_sweep_equals_the_untiled(networks: dict[str, Any]) -> None:
    from neural_style.config import Candidate

    weights = networks["new"]
    content, styles = _images((40, 60, 3), seed=1), [_images((50, 40, 3), seed=3), _images((30, 30, 3), seed=5)]
    candidates = [Candidate.make((1.0, 0.0), 500.0), Candidate.make((0.3, 0.7), 100.0)]
    results = {}
    for tile in (None, 32):
        config = StyleConfig(iterations=3, seed=7, tile_size=tile)
        results[tile] = list(Stylization(weights, content, styles, config, candidates=candidates))[-1]
    assert np.abs(results[None].images - results[32].images).max() <= 1.0
    np.testing.assert_allclose(results[32].image_losses["total"], results[None].image_losses["total"], rtol=1e-4)


def test_keras_style_targets_of_a_large_image_by_tiles(networks: dict[str, Any]) -> None:
    """The Keras losses' Gram targets (RGB input, mean subtracted inside) computed in tiles are the same."""
    from neural_style.perceptual import GramTargets

    layers = ["relu1_1", "relu3_1", "relu5_1"]
    network = VggFeatures.from_weights(networks["old"], layers)
    style = _images((90, 70, 3), seed=8)
    whole = GramTargets.from_styles(network, [style], layers)
    tiled = GramTargets.from_styles(network, [style], layers, tile_size=32)
    for layer in layers:
        np.testing.assert_allclose(tiled.grams[layer].numpy(), whole.grams[layer].numpy(), rtol=1e-5)


def test_scoring_a_large_image_by_tiles(networks: dict[str, Any]) -> None:
    from neural_style.scoring import score_images

    weights = networks["new"]
    content, style = _images((45, 70, 3), seed=1), _images((50, 40, 3), seed=3)
    images = np.stack([_images((45, 70, 3), seed=s) for s in (5, 6)]).round()
    whole = score_images(weights, content, [style], images)
    tiled = score_images(weights, content, [style], images, StyleConfig(tile_size=16))
    for key, value in whole.items():
        np.testing.assert_allclose(tiled[key], value, rtol=1e-5)


@pytest.mark.slow
def test_coarse_to_fine_in_tiles_equals_untiled(networks: dict[str, Any]) -> None:
    """--scales: the stages larger than a tile run in tiles (here the second), with the same result."""
    from neural_style.coarse import coarse_to_fine

    weights = networks["new"]
    content, style = _images((45, 70, 3), seed=1), _images((50, 40, 3), seed=3)
    results = {}
    for tile in (None, 32):
        config = StyleConfig(seed=2, tile_size=tile)
        records = list(coarse_to_fine(weights, content, [style], config, widths=[32, 70], iterations=[2, 3]))
        results[tile] = records[-1][1]
    assert np.abs(results[None].images - results[32].images).max() <= 1.0
    np.testing.assert_allclose(results[32].image_losses["total"], results[None].image_losses["total"], rtol=1e-4)


SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_FILE = SHARED / "weights" / "vgg19-layout-hed-edges.mat"


@pytest.mark.slow
@pytest.mark.skipif(not REAL_FILE.is_file(), reason=f"{REAL_FILE} is not present")
def test_real_network_tiles_equal_the_whole_image() -> None:
    """With real VGG-19 weights (64 to 512 channels): the tiled loss and gradient of a photo-sized crop equal the
    untiled ones, tiles of 64 px with the 80 px halo of relu5_1."""
    from neural_style.image_io import read_image, resize
    from neural_style.matconvnet import load_vgg

    weights = load_vgg(REAL_FILE)
    content = resize(read_image(SHARED / "images" / "grace_hopper.jpg"), (208, 176))
    style = resize(read_image(SHARED / "images" / "starry_night.jpg"), (120, 150))
    objective = build_objective(weights, content, [style], StyleConfig())
    images = (content[None] - weights.mean_pixel + np.random.default_rng(0).normal(0, 20, (1, 208, 176, 3))).astype(
        np.float32
    )
    params = {"blend": tf.constant([1.0]), "style_weight": tf.constant([500.0])}
    tiled = TiledObjective(objective, 64)
    assert (tiled.tiling.grid.halo, len(tiled.tiling.grid.tiles(208, 176))) == (80, 4 * 3)
    _assert_same(tiled.value_and_gradient(images, **params), _untiled(objective, images, params))
