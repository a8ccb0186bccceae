"""Tests of the flags of neural-style and the settings they make (neural_style.cli.options): the loss flags defined
once for neural-style, neural-style-score and neural-style-train, and settings given as a mapping rather than a
command line."""

from __future__ import annotations

import pytest
from absl import flags

from neural_style.cli import score as score_cli
from neural_style.cli import stylize as stylize_cli
from neural_style.cli import train as train_cli
from neural_style.cli.options import flags_from_settings, style_config
from neural_style.config import StyleConfig, TrainConfig
from neural_style.errors import NeuralStyleError

LOSS_FLAGS = ("content_weight", "style_weight", "tv_weight", "style_layer_weight_exp", "pooling")
LAYER_FLAGS = ("content_layers", "style_layers")


def _flags() -> dict[str, flags.FlagValues]:
    return {
        "neural-style": stylize_cli.flag_values(),
        "neural-style-score": score_cli.flag_values(),
        "neural-style-train": train_cli.flag_values(),
    }


def test_the_loss_flags_are_one_definition_with_each_commands_defaults() -> None:
    """Same help and parser in all three commands; the defaults are each config's (neural-style's 5, 500, 100 and
    relu4_2,relu5_2; training's 1, 20, 1 and relu3_3); only the stylizing commands have the two blends."""
    commands = _flags()
    for name in (*LOSS_FLAGS, "style_layers"):
        helps = {command: fv[name].help for command, fv in commands.items()}
        parsers = {type(fv[name].parser) for fv in commands.values()}
        assert len(parsers) == 1, name
        if name != "style_layers":  # the layer lists' help names each command's default layers
            assert len(set(helps.values())) == 1, helps
    style, train = StyleConfig(), TrainConfig()
    for command, defaults in (("neural-style", style), ("neural-style-score", style), ("neural-style-train", train)):
        fv = commands[command]
        assert [fv[name].default for name in ("content_weight", "style_weight", "tv_weight")] == [
            defaults.content_weight,
            defaults.style_weight,
            defaults.tv_weight,
        ]
        assert tuple(fv["content_layers"].default) == defaults.content_layers
        assert tuple(fv["style_layers"].default) == defaults.style_layers
        assert ("content_weight_blend" in fv, "style_blend_weights" in fv) == (command != "neural-style-train",) * 2
    assert (style.content_weight, style.style_weight, style.tv_weight) == (5.0, 500.0, 100.0)
    assert (train.content_weight, train.style_weight, train.tv_weight) == (1.0, 20.0, 1.0)
    assert commands["neural-style-train"]["content_layers"].help == (
        "Comma-separated layers (default relu3_3), weighed equally."
    )


def test_settings_become_the_config_the_command_line_would_make() -> None:
    """A mapping of settings (numbers, booleans, lists) gives the same StyleConfig as the command line."""
    settings = {
        "content": "c.png",
        "styles": ["a.png", "b.png"],
        "output": "o.png",
        "style_weight": 100,
        "style_blend_weights": (3, 1),
        "preserve_colors": True,
        "content_layers": ["relu3_1"],
        "clip": True,
        "seed": None,  # left at its default
    }
    config = style_config(flags_from_settings(settings))
    argv = [
        "neural-style",
        "--content=c.png",
        "--styles=a.png,b.png",
        "--output=o.png",
        "--style_weight=100",
        "--style_blend_weights=3,1",
        "--preserve_colors",
        "--content_layers=relu3_1",
        "--clip",
    ]
    fv = stylize_cli.flag_values()
    fv(argv)
    assert config == style_config(fv)
    assert (config.style_weight, config.style_blend_weights, config.color_mode, config.seed) == (
        100.0,
        (3.0, 1.0),
        "luminance",
        None,
    )
    assert not style_config(flags_from_settings({**settings, "clip": False})).clip


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"no_such_setting": 1}, "--no_such_setting is not a setting of neural-style"),
        ({"iterations": "many"}, "flag --iterations=many: invalid literal for int() with base 10: 'many'"),
        ({"style_weight": float("nan")}, "--style_weight is nan; give a finite number"),
        ({"pooling": "mean"}, "flag --pooling=mean: value should be one of <max|avg>"),
        ({"styles": ["a.png", ""]}, "--styles 'a.png,' has an empty entry"),
    ],
)
def test_settings_are_refused_as_the_command_line_is(settings: dict[str, object], message: str) -> None:
    with pytest.raises(NeuralStyleError) as info:
        flags_from_settings(settings)
    assert str(info.value).startswith(message) and info.value.usage
