"""Tests of neural_style.objective: per-image independence of a batch, and the objective its settings describe."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_vgg_mat

from neural_style.config import Candidate, StyleConfig
from neural_style.matconvnet import read_matconvnet
from neural_style.objective import Objective
from neural_style.stylization import build_objective

# --- per-image independence -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_problem(tmp_path_factory):
    """A synthetic VGG, a 16x16 content image, two style images and two candidate images."""
    vgg = write_vgg_mat(tmp_path_factory.mktemp("vgg") / "vgg.mat")
    weights = read_matconvnet(vgg.path)
    rng = np.random.default_rng(1)
    content = rng.uniform(0, 255, (16, 16, 3))
    styles = [rng.uniform(0, 255, (12, 12, 3)), rng.uniform(0, 255, (16, 8, 3))]
    images = rng.normal(0, 30, (2, 16, 16, 3)).astype(np.float32)
    return weights, content, styles, images


def _loss_and_gradient(
    objective: Objective, candidates: list[Candidate], images: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image total loss and the gradient of its sum with respect to the images."""
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        blend = tf.constant([c.blend for c in candidates], tf.float32)
        style_weight = tf.constant([c.style_weight for c in candidates], tf.float32)
        total = objective(x, blend=blend, style_weight=style_weight)["total"]
        summed = tf.reduce_sum(total)
    return total.numpy(), tape.gradient(summed, x).numpy()


def test_batch_gradient_of_summed_loss_is_each_images_own_gradient(tiny_problem):
    """d sum(total) / d image_i of an N=2 batch equals the gradient of image i's loss computed alone (N=1)."""
    weights, content, styles, images = tiny_problem
    config = StyleConfig(content_weight_blend=0.5, style_layer_weight_exp=1.5)
    # a different style mix and style weight per image
    candidates = [Candidate.make((1.0, 0.0), 500.0), Candidate.make((1.0, 3.0), 50.0)]
    objective = build_objective(weights, content, styles, config)
    batch_loss, batch_grad = _loss_and_gradient(objective, candidates, images)
    assert batch_loss.shape == (2,)
    for i in range(2):
        loss, grad = _loss_and_gradient(objective, candidates[i : i + 1], images[i : i + 1])
        np.testing.assert_allclose(batch_loss[i], loss[0], rtol=1e-5)
        np.testing.assert_allclose(batch_grad[i], grad[0], rtol=1e-4, atol=1e-5 * np.abs(grad).max())
        assert np.abs(grad).max() > 0


# --- the objective from settings ------------------------------------------------------------------------------------


def test_objective_from_settings_builds_the_network_the_settings_describe(tiny_problem):
    """The network runs to the deepest weighted layer and no further (exp 0 leaves relu1_1 alone among the style
    layers), with the settings' pooling; a given network is used as it is, with the targets given."""
    weights = tiny_problem[0]
    settings = StyleConfig(style_layer_weight_exp=0.0, pooling="avg", tv_weight=7.0).loss_settings
    objective = Objective.from_settings(weights, settings, preprocessed=True)
    network = objective.network
    assert network.outputs == ("relu4_2", "relu1_1") and network.layer_specs[-1][0] == "relu4_2"
    assert (network.pooling, network.preprocessed, network.precision) == ("avg", True, "float32")
    assert (objective.content_layers, objective.style_layers) == ({"relu4_2": 1.0}, {"relu1_1": 1.0})
    assert (objective.content_weight, objective.style_weight, objective.tv_weight) == (5.0, 500.0, 7.0)
    assert objective.content_targets is None and objective.blend is None
    same = Objective.from_settings(network, settings, blend=tf.constant([0.25, 0.75]))
    assert same.network is network and same.blend.numpy().tolist() == [0.25, 0.75]
