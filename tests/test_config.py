"""Tests of the settings (neural_style.config): StyleConfig and TrainConfig validation, Candidate, even_blends,
make_candidates and the shared checks (check_pooling, check_blend_weights, the latter also property-based)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from conftest import PROPERTIES
from hypothesis import given
from hypothesis import strategies as st

from neural_style.config import (
    POOLING,
    STYLE_LAYERS,
    Candidate,
    LossSettings,
    StyleConfig,
    TrainConfig,
    check_blend_weights,
    check_pooling,
    even_blends,
    make_candidates,
)
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights, load_vgg

# --------------------------------------------------------------------------------------------------- StyleConfig


def test_style_config_defaults_are_valid() -> None:
    """The defaults are neural-style's (its README's options) and pass the checks."""
    config = StyleConfig()
    config.validate(n_styles=1)
    StyleConfig(style_blend_weights=(1.0, 3.0)).validate(n_styles=2)
    assert (config.iterations, config.content_weight, config.content_weight_blend, config.style_weight) == (
        1000,
        5.0,
        1.0,
        500.0,
    )
    assert (config.style_layer_weight_exp, config.tv_weight, config.pooling) == (1.0, 100.0, "max")
    assert (config.learning_rate, config.beta1, config.beta2, config.epsilon) == (10.0, 0.9, 0.999, 1e-8)


BAD_STYLE_CONFIGS = [
    ({"iterations": 0}, "iterations", "is 0"),
    ({"pooling": "median"}, "pooling", "median"),
    ({"print_iterations": 0}, "print_iterations", "is 0"),
    ({"checkpoint_iterations": -1}, "checkpoint_iterations", "is -1"),
    ({"initial_noiseblend": 1.5}, "initial_noiseblend", "is 1.5"),
    ({"learning_rate": 0.0}, "learning_rate", "positive"),
    ({"epsilon": float("nan")}, "epsilon", "positive"),
    ({"beta1": 1.0}, "beta1", "[0, 1)"),
    ({"beta2": -0.1}, "beta2", "[0, 1)"),
    ({"style_weight": -1.0}, "style_weight", "-1.0"),
    ({"tv_weight": float("inf")}, "tv_weight", "inf"),
    ({"style_layer_weight_exp": -1.0}, "style_layer_weight_exp", "is -1.0"),
    ({"content_weight_blend": 2.0}, "content_weight_blend", "is 2.0"),
    ({"style_blend_weights": (1.0,)}, "style_blend_weights", "1 values for 2 styles"),
    ({"optimizer": "sgd"}, "optimizer", "sgd"),
    ({"lbfgs_memory": 0}, "lbfgs_memory", "is 0"),
    ({"tolerance": -1.0}, "tolerance", "is -1.0"),
    ({"stop_at_loss": float("nan")}, "stop_at_loss", "nan"),
    ({"precision": "float64"}, "precision", "float64"),
    ({"preserve_colors": "sepia"}, "preserve_colors", "'sepia'; use one of: none, luminance, histogram"),
    ({"content_layers": ()}, "content_layers", "is empty"),
    ({"style_layers": ("relu1_1", "relu1_1")}, "style_layers", "names a layer twice"),
    (
        {"content_layers": ("relu3_1",), "content_weight_blend": 0.5},
        "content_weight_blend",
        "weighs only the default content layers relu4_2,relu5_2, not relu3_1",
    ),
]


@pytest.mark.parametrize(
    ("changes", "setting", "mention"), BAD_STYLE_CONFIGS, ids=[next(iter(c)) for c, _, _ in BAD_STYLE_CONFIGS]
)
def test_style_config_validation(changes: dict, setting: str, mention: str) -> None:
    """Each bad setting is refused by name (the command turns the name into its flag) with what is wrong."""
    with pytest.raises(NeuralStyleError) as info:
        dataclasses.replace(StyleConfig(), **changes).validate(n_styles=2)
    assert info.value.setting == setting
    assert str(info.value).startswith(setting)
    assert mention in str(info.value)


def test_style_config_layers_and_colour_modes() -> None:
    """Custom layers are checked against the network's; a custom content list takes the default blend (1);
    preserve_colors True and False are the luminance and no colour modes."""
    names = ("conv1_1", "relu1_1", "pool1", "conv2_1", "relu2_1")
    StyleConfig(content_layers=("relu2_1",), style_layers=("relu1_1",)).validate(1, layer_names=names)
    with pytest.raises(
        NeuralStyleError,
        match="^style_layers names relu3_1, relu4_1, relu5_1, not a conv or ReLU layer of the network; give some of "
        "conv1_1, relu1_1, conv2_1, relu2_1$",
    ):
        StyleConfig(content_layers=("relu2_1",)).validate(1, layer_names=names)
    StyleConfig(content_layers=("conv2_1",), style_layers=("conv1_1",)).validate(1, layer_names=names)
    with pytest.raises(NeuralStyleError, match="^style_layers names pool1, not a conv or ReLU layer"):
        StyleConfig(content_layers=("relu2_1",), style_layers=("pool1",)).validate(1, layer_names=names)
    assert [StyleConfig(preserve_colors=v).color_mode for v in (True, False, "histogram")] == [
        "luminance",
        "none",
        "histogram",
    ]


def test_loss_settings_weigh_only_the_layers_that_count() -> None:
    """A run's objective: relu4_2 alone by default (blend 1), both content layers with a blend, and no style layer
    of weight 0 (exp 0 leaves relu1_1): the layers the network runs to are those that weigh anything."""
    default = StyleConfig().loss_settings
    assert default.content_layers == {"relu4_2": 1.0}
    assert default.style_layers == pytest.approx(dict.fromkeys(STYLE_LAYERS, 0.2))
    assert default.layers == ("relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert (default.content_weight, default.style_weight, default.tv_weight) == (5.0, 500.0, 100.0)
    blended = StyleConfig(content_weight_blend=0.25, style_layer_weight_exp=0.0, pooling="avg", precision="float16")
    settings = blended.loss_settings
    assert settings.content_layers == {"relu4_2": 0.25, "relu5_2": 0.75}
    assert settings.style_layers == {"relu1_1": 1.0}
    assert settings.layers == ("relu4_2", "relu5_2", "relu1_1")
    assert (settings.pooling, settings.precision) == ("avg", "float16")


def test_train_loss_settings_weigh_content_layers_equally() -> None:
    settings = TrainConfig(content_layers=("relu2_2", "relu3_3"), style_layer_weight_exp=2.0).loss_settings
    assert settings.content_layers == {"relu2_2": 0.5, "relu3_3": 0.5}
    assert settings.style_layers == pytest.approx(
        {"relu1_2": 1 / 15, "relu2_2": 2 / 15, "relu3_3": 4 / 15, "relu4_3": 8 / 15}
    )
    assert settings.layers == ("relu2_2", "relu3_3", "relu1_2", "relu4_3")
    assert (settings.content_weight, settings.style_weight, settings.tv_weight, settings.pooling) == (1, 20, 1, "max")
    assert LossSettings({"a": 1.0}, {"b": 1.0, "a": 0.5}).layers == ("a", "b")


def test_check_pooling() -> None:
    for pooling in POOLING:
        check_pooling(pooling)
    with pytest.raises(NeuralStyleError, match="min"):
        check_pooling("min")


# ------------------------------------------------------------------------------------ candidates and blends


def test_even_blends_five() -> None:
    """Five blends of two styles: steps of 1/4 from pure first to pure second, both ends included."""
    assert even_blends(5) == [(1.0, 0.0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0.0, 1.0)]


def test_even_blends_two_is_both_pure_styles() -> None:
    assert even_blends(2) == [(1.0, 0.0), (0.0, 1.0)]


@pytest.mark.parametrize("k", [1, 0, -3])
def test_even_blends_needs_two(k: int) -> None:
    with pytest.raises(NeuralStyleError, match="^blend_sweep"):
        even_blends(k)


def test_make_candidates_is_the_product_blends_major() -> None:
    """Every blend with every style weight, blends varying slowest; blends are normalised to sum 1."""
    candidates = make_candidates(StyleConfig(), 2, [(1, 3), (2, 2)], [10.0, 100.0])
    assert candidates == [
        Candidate((0.25, 0.75), 10.0),
        Candidate((0.25, 0.75), 100.0),
        Candidate((0.5, 0.5), 10.0),
        Candidate((0.5, 0.5), 100.0),
    ]


def test_make_candidates_defaults_come_from_the_config() -> None:
    """Without blends the config's blend (or equal weights) is used; without style weights the config's."""
    assert make_candidates(StyleConfig(style_weight=7.0), 2, [(1, 0)]) == [Candidate((1.0, 0.0), 7.0)]
    config = StyleConfig(style_blend_weights=(1.0, 3.0))
    assert make_candidates(config, 2, style_weights=[1.0, 2.0]) == [
        Candidate((0.25, 0.75), 1.0),
        Candidate((0.25, 0.75), 2.0),
    ]
    assert make_candidates(StyleConfig(), 4, style_weights=[5.0]) == [Candidate((0.25,) * 4, 5.0)]


@pytest.mark.parametrize("blend, weight", [((1, -1), 1.0), ((0, 0), 1.0), ((1, 1), -1.0), ((1, 1), float("nan"))])
def test_candidate_rejects_bad_weights(blend: tuple[float, ...], weight: float) -> None:
    with pytest.raises(NeuralStyleError):
        Candidate.make(blend, weight)


def test_blend_weights_that_overflow_are_refused() -> None:
    with pytest.raises(NeuralStyleError):
        check_blend_weights((1e308, 1e308), 2)


@PROPERTIES
@given(weights=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5), n_styles=st.integers(1, 5))
def test_check_blend_weights_accepts_only_normalisable_weights(weights: list[float], n_styles: int) -> None:
    """Accepted weights normalise to a blend summing to 1 (a finite sum assumed: see the overflow test above)."""
    try:
        check_blend_weights(weights, n_styles)
    except NeuralStyleError:
        return
    assert len(weights) == n_styles
    if math.isfinite(sum(weights)):
        blend = Candidate.make(weights, 1.0).blend
        assert math.isclose(sum(blend), 1.0, rel_tol=1e-9) and min(blend) >= 0


# --------------------------------------------------------------------------------------------------- TrainConfig


@pytest.fixture(scope="module")
def vgg(tiny_vgg_file) -> VggWeights:
    return load_vgg(tiny_vgg_file)


def test_total_steps() -> None:
    assert TrainConfig(epochs=2, batch_size=2).total_steps(5) == 5  # ceil(2 * 5 / 2)
    assert TrainConfig(epochs=1, batch_size=4).total_steps(6) == 2  # the last batch rounded up
    assert TrainConfig(epochs=3, batch_size=4, steps=7).total_steps(1000) == 7


@pytest.mark.parametrize(
    ("changes", "setting", "mention"),
    [
        ({"image_size": 0}, "image_size", "is 0"),
        ({"batch_size": 0}, "batch_size", "is 0"),
        ({"steps": 0}, "steps", "is 0"),
        ({"style_weight": -1.0}, "style_weight", "is -1.0"),
        ({"tv_weight": float("nan")}, "tv_weight", "is nan"),
        ({"content_weight": 0.0, "style_weight": 0.0, "tv_weight": 0.0}, "content_weight", "nothing to learn"),
        ({"learning_rate": 0.0}, "learning_rate", "positive"),
        ({"content_layers": ()}, "content_layers", "empty"),
        ({"style_layers": ("relu1_2", "relu1_2")}, "style_layers", "twice"),
        ({"style_layers": ("relu9_9",)}, "style_layers", "relu9_9"),
        ({"pooling": "median"}, "pooling", "median"),
        ({"residual_blocks": -1}, "residual_blocks", "is -1"),
        ({"style_layer_weight_exp": 0.0}, "style_layer_weight_exp", "positive"),
    ],
)
def test_config_validation(vgg: VggWeights, changes: dict, setting: str, mention: str) -> None:
    """Each bad setting is refused by name (the command turns the name into its flag) with what is wrong."""
    with pytest.raises(NeuralStyleError, match=mention) as info:
        TrainConfig(**changes).validate(vgg.layer_names)
    assert info.value.setting == setting
    assert str(info.value).startswith(setting)
