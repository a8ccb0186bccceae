"""Tests of the Keras losses (neural_style.perceptual) over VggFeatures: against the library's own loss functions,
against numbers worked out by hand on conftest's one-channel network, in ``model.fit`` and custom loops, and
through ``.keras`` files loaded without the ``.mat`` file; their registration with Keras and the package's public
names. The VggFeatures layer itself is tested in test_vgg.py."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, red_image, red_network

import neural_style
from neural_style import losses as L
from neural_style.config import CONTENT_LAYERS, STYLE_LAYERS, content_layer_weights, style_layer_weights
from neural_style.errors import NeuralStyleError
from neural_style.perceptual import (
    ContentLoss,
    GramTargets,
    PerceptualLoss,
    StyleLoss,
    TotalVariationLoss,
)
from neural_style.vgg import VggFeatures, feature_extractor, preprocess

# Worked example on _red_network (mean red 10): relu1_1 is R - 10 where positive.
Y_TRUE = red_image([[12, 14], [10, 10]])  # features [[2, 4], [0, 0]]
Y_PRED = red_image([[15, 10], [10, 10]])  # features [[5, 0], [0, 0]]
STYLE_A = red_image([[11, 13], [10, 16]])[0]  # features [[1, 3], [0, 6]]
STYLE_B = red_image([[10, 10], [10, 10]])[0]  # features all 0
CONTENT = (9 + 16) / 4  # diffs (3, -4, 0, 0): mean of squares = 6.25
GRAM_PRED = 25 / 4  # F^T F / (H W C) with H W C = 2 * 2 * 1: 6.25
GRAM_TRUE = (4 + 16) / 4  # 5
GRAM_A = (1 + 9 + 36) / 4  # 11.5
STYLE_VS_TRUE = (GRAM_PRED - GRAM_TRUE) ** 2  # 1.5625
STYLE_VS_A = (GRAM_PRED - GRAM_A) ** 2  # 27.5625
STYLE_VS_B = (GRAM_PRED - 0.0) ** 2  # 39.0625
# y_pred's red channel [[15, 10], [10, 10]], green and blue 0: one down and one across difference of -5 each,
# each mean taken over 1 x 2 x 3 = 6 values.
TV_PRED = 25 / 6 + 25 / 6


# -------------------------------------------------------------------------------------------- losses by hand


def test_content_loss_by_hand():
    loss = ContentLoss(red_network(), {"relu1_1": 1.0}, reduction=None)
    np.testing.assert_allclose(loss(Y_TRUE, Y_PRED).numpy(), [CONTENT], rtol=1e-6)


def test_style_loss_against_y_true_by_hand():
    loss = StyleLoss(red_network(), layer_weights={"relu1_1": 1.0}, reduction=None)
    np.testing.assert_allclose(loss(Y_TRUE, Y_PRED).numpy(), [STYLE_VS_TRUE], rtol=1e-6)


def test_style_loss_against_fixed_styles_with_blend_by_hand():
    """Two styles blended 3:1 -> 0.75 x 27.5625 + 0.25 x 39.0625; y_true is ignored."""
    loss = StyleLoss(red_network(), [STYLE_A, STYLE_B], {"relu1_1": 1.0}, style_blend_weights=[3, 1], reduction=None)
    expected = 0.75 * STYLE_VS_A + 0.25 * STYLE_VS_B
    np.testing.assert_allclose(loss(Y_TRUE, Y_PRED).numpy(), [expected], rtol=1e-6)
    np.testing.assert_allclose(loss(Y_PRED, Y_PRED).numpy(), [expected], rtol=1e-6)
    np.testing.assert_allclose(loss.targets.grams["relu1_1"].numpy()[:, 0, 0], [GRAM_A, 0.0], rtol=1e-6)


def test_total_variation_loss_by_hand():
    loss = TotalVariationLoss(reduction=None)
    np.testing.assert_allclose(loss(Y_TRUE, Y_PRED).numpy(), [TV_PRED], rtol=1e-6)


def test_perceptual_loss_weighs_the_three_terms_by_hand():
    loss = PerceptualLoss(
        red_network(),
        STYLE_A,
        content_weight=2.0,
        style_weight=3.0,
        tv_weight=0.5,
        content_layer_weights={"relu1_1": 1.0},
        style_layer_weights={"relu1_1": 1.0},
        reduction=None,
    )
    terms = loss.terms(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(terms["content"].numpy(), [2.0 * CONTENT], rtol=1e-6)
    np.testing.assert_allclose(terms["style"].numpy(), [3.0 * STYLE_VS_A], rtol=1e-6)
    np.testing.assert_allclose(terms["tv"].numpy(), [0.5 * TV_PRED], rtol=1e-6)
    total = 2.0 * CONTENT + 3.0 * STYLE_VS_A + 0.5 * TV_PRED  # 12.5 + 82.6875 + 4.1667 = 99.3542
    np.testing.assert_allclose(loss(Y_TRUE, Y_PRED).numpy(), [total], rtol=1e-6)


def test_default_reduction_averages_over_the_batch():
    loss = ContentLoss(red_network(), {"relu1_1": 1.0})
    y_true = np.concatenate([Y_TRUE, Y_TRUE])
    y_pred = np.concatenate([Y_PRED, Y_TRUE])  # losses 6.25 and 0
    np.testing.assert_allclose(float(loss(y_true, y_pred)), CONTENT / 2, rtol=1e-6)


# ------------------------------------------------------------------------------- losses = the library's math


def test_losses_equal_the_library_functions_on_a_random_network(scaled_vgg):
    """Each loss is neural_style.losses applied to the network's activations, image by image."""
    _, weights = scaled_vgg
    y_true, y_pred = random_images(2, seed=1), random_images(2, seed=2)
    styles = [random_images(1, 16, 16, seed=3)[0], random_images(1, 12, 20, seed=4)[0]]
    content_w = content_layer_weights(0.5)
    style_w = style_layer_weights(2.0)
    net = feature_extractor(weights, [*STYLE_LAYERS, *CONTENT_LAYERS], preprocessed=True)

    def feats(images):
        return net(preprocess(np.asarray(images, np.float32), weights.mean_pixel))

    f_true, f_pred = feats(y_true), feats(y_pred)
    grams = {layer: L.gram_matrix(f_pred[layer]) for layer in style_w}
    style_grams = [feats(s[None]) for s in styles]
    targets = {layer: tf.concat([L.gram_matrix(f[layer]) for f in style_grams], 0) for layer in style_w}
    blend = L.blend_weights([0.7, 0.3], 2)
    content = L.content_loss(f_pred, f_true, content_w).numpy()
    style = L.style_loss(grams, targets, style_w, blend).numpy()
    tv = L.tv_loss(preprocess(y_pred, weights.mean_pixel)).numpy()

    def check(loss, expected):
        np.testing.assert_allclose(loss(y_true, y_pred).numpy(), expected, rtol=1e-5)

    check(ContentLoss(weights, content_w, reduction=None), content)
    check(StyleLoss(weights, styles, style_w, [0.7, 0.3], reduction=None), style)
    check(TotalVariationLoss(reduction=None), tv)
    perceptual = PerceptualLoss(
        weights,
        styles,
        content_layer_weights=content_w,
        style_layer_weights=style_w,
        style_blend_weights=[0.7, 0.3],
        reduction=None,
    )
    check(perceptual, 5.0 * content + 500.0 * style + 100.0 * tv)  # neural-style's default weights

    # Against y_true, image i's Gram matrices are image i's target alone.
    for i in range(2):
        own = {layer: L.gram_matrix(f_true[layer][i : i + 1]) for layer in style_w}
        expected = L.style_loss({k: v[i : i + 1] for k, v in grams.items()}, own, style_w, [1.0]).numpy()
        np.testing.assert_allclose(
            StyleLoss(weights, layer_weights=style_w, reduction=None)(y_true, y_pred)[i], expected[0], rtol=1e-5
        )


def test_losses_share_a_given_feature_layer(scaled_vgg):
    _, weights = scaled_vgg
    features = VggFeatures.from_weights(weights, [*STYLE_LAYERS, *CONTENT_LAYERS])
    assert ContentLoss(features).network is features
    assert PerceptualLoss(features).network is features
    with pytest.raises(NeuralStyleError, match="does not return relu4_2"):
        ContentLoss(VggFeatures.from_weights(weights, ["relu1_1"]))


def test_loss_argument_errors(scaled_vgg):
    _, weights = scaled_vgg
    with pytest.raises(NeuralStyleError, match="style_blend_weights needs style_images"):
        StyleLoss(weights, style_blend_weights=[1.0])
    with pytest.raises(NeuralStyleError, match=r"shape \(4, 4\)"):
        StyleLoss(weights, np.zeros((4, 4), np.float32))
    with pytest.raises(NeuralStyleError, match="style_blend_weights has 1 values for 2 styles"):
        StyleLoss(weights, [random_images(1)[0], random_images(1)[0]], style_blend_weights=[1.0])
    with pytest.raises(NeuralStyleError, match="tv_weight"):
        PerceptualLoss(weights, tv_weight=-1.0)
    with pytest.raises(NeuralStyleError, match="relu9_9"):
        ContentLoss(weights, {"relu9_9": 1.0})


# ------------------------------------------------------------------------------------------- training and files


def _image_model() -> keras.Model:
    """A tiny residual image-to-image model: 0..255 in, 0..255 out."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer="he_normal")(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", kernel_initializer="he_normal")(x)
    return keras.Model(inputs, keras.layers.Add()([inputs, x]))


@pytest.mark.slow
def test_fit_two_steps_and_a_custom_loop(scaled_vgg):
    _, weights = scaled_vgg
    keras.utils.set_random_seed(0)
    x = random_images(4)
    loss = PerceptualLoss(weights, random_images(1, 16, 16, seed=5)[0], tv_weight=1.0)
    model = _image_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    history = model.fit(x, x, batch_size=4, epochs=2, verbose=0).history["loss"]
    assert len(history) == 2 and np.isfinite(history).all()
    assert history[1] != history[0]

    with tf.GradientTape() as tape:
        value = loss(x, model(x, training=True))
    grads = tape.gradient(value, model.trainable_variables)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
    assert not any(v.trainable for v in loss.network.weights)


LOSS_MAKERS = {
    "content": lambda w: ContentLoss(w, content_layer_weights(0.5)),
    "style_vs_y_true": lambda w: StyleLoss(w),
    "style_fixed": lambda w: StyleLoss(
        w, [random_images(1, 16, 16, seed=6)[0], random_images(1, 8, 8, seed=7)[0]], None, [2, 1]
    ),
    "tv": lambda w: TotalVariationLoss(),
    "perceptual": lambda w: PerceptualLoss(w, random_images(1, 16, 16, seed=6)[0], tv_weight=1.0, pooling="avg"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(LOSS_MAKERS))
def test_compiled_model_saves_and_loads_without_the_mat(scaled_vgg, tmp_path, kind):
    """A model compiled with the loss reloads from .keras, with the .mat deleted and no custom_objects.

    Only the perceptual case trains and evaluates (each compiles a TF function, seconds apiece); the others check
    the loss value directly.
    """
    mat, weights = scaled_vgg
    x, y = random_images(2, seed=8), random_images(2, seed=9)
    model = _image_model()
    model.compile(optimizer="adam", loss=LOSS_MAKERS[kind](weights))
    trained = kind == "perceptual"
    if trained:
        model.fit(x, y, epochs=1, verbose=0)
    else:
        model.optimizer.build(model.trainable_variables)  # as fit would: the loaded model builds its own
    before = float(model.loss(y, model(x)))
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    mat.path.unlink()

    loaded = keras.models.load_model(path)
    assert type(loaded.loss) is type(model.loss)
    assert loaded.loss.get_config() == model.loss.get_config()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert float(loaded.loss(y, loaded(x))) == before
    if trained:
        assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)


def test_configs_round_trip_and_names_are_registered(scaled_vgg):
    _, weights = scaled_vgg
    for cls in (VggFeatures, GramTargets, ContentLoss, StyleLoss, TotalVariationLoss, PerceptualLoss):
        assert keras.saving.get_registered_name(cls) == f"neural_style>{cls.__name__}"
    loss = PerceptualLoss(weights, random_images(1, 8, 8)[0], style_blend_weights=[1.0], content_weight=3.0)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, PerceptualLoss) and again.get_config() == loss.get_config()
    # The config holds shapes, not weights: a loss rebuilt from it alone refuses to run rather than use zeros.
    with pytest.raises(NeuralStyleError, match="no weights yet"):
        again(random_images(1), random_images(1))


def test_public_names_are_exported():
    names = {"VggFeatures", "feature_extractor", "ContentLoss", "StyleLoss", "TotalVariationLoss", "PerceptualLoss"}
    assert names | {"ImageNetClassifier", "top_k"} <= set(neural_style.__all__)
    assert neural_style.PerceptualLoss is PerceptualLoss
    assert neural_style.feature_extractor is feature_extractor
