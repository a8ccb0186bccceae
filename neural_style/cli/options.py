"""The flags of ``neural-style`` and the checked settings they make; the loss flags every command shares.

Each group of flags is defined by one function that adds it to a ``flags.FlagValues`` for a command module (the
module ``--help`` lists them under): :func:`define_loss_flags` (loss weights, pooling, layers: ``neural-style``,
``neural-style-score`` and ``neural-style-train``), :func:`define_input_flags` and :func:`define_image_flags`
(``neural-style`` and ``neural-style-score``) and :func:`define_style_flags`, every flag of ``neural-style``.
:func:`style_config` turns neural-style's flags into the validated :class:`~neural_style.config.StyleConfig`, and
:func:`flags_from_settings` gives those flags from a mapping of settings, checked as a command line is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from absl import flags

from neural_style.cli import distribute
from neural_style.cli.command import check_flag_values, define_network, flag_settings, floats, require
from neural_style.cli.plan import max_memory, stage_iterations
from neural_style.config import (
    COLOR_MODES,
    FRAME_LEARNING_RATE_SHARE,
    OPTIMIZERS,
    POOLING,
    PRECISIONS,
    TEMPORAL_OFFSETS,
    TEMPORAL_WEIGHT,
    StyleConfig,
    TrainConfig,
)
from neural_style.errors import NeuralStyleError

__all__ = [
    "SETTING_FLAGS",
    "check_sizes",
    "checkpoint_path",
    "config_from_flags",
    "define_color_and_region_flags",
    "define_image_flags",
    "define_input_flags",
    "define_loss_flags",
    "define_style_flags",
    "flags_from_settings",
    "style_config",
]

# The StyleConfig settings whose flag has another name.
SETTING_FLAGS = {"epsilon": "eps"}
# The StyleConfig settings given by the flag of the same name, as they are (the others are converted).
_CONFIG_FLAGS = (
    *("iterations", "content_weight", "content_weight_blend", "style_weight", "style_layer_weight_exp", "tv_weight"),
    *("learning_rate", "beta1", "beta2", "pooling", "initial_noiseblend", "preserve_colors", "print_iterations"),
    *("checkpoint_iterations", "seed", "optimizer", "lbfgs_memory", "stop_at_loss", "tolerance", "precision", "xla"),
    *("clip", "average_decay", "tile_size"),
)


class _ColorModeParser(flags.ArgumentParser):
    """--preserve_colors: bare (or true) is luminance, --nopreserve_colors (or false) none, else a mode by name."""

    def parse(self, argument: Any) -> str:
        text = str(argument).strip().lower()
        value = {"true": "luminance", "1": "luminance", "false": "none", "0": "none"}.get(text, text)
        if value not in COLOR_MODES:
            raise ValueError(
                f"'{argument}' is not a colour mode; use --preserve_colors (luminance) or "
                f"--preserve_colors={'|'.join(COLOR_MODES)}"
            )
        return value

    def flag_type(self) -> str:
        return "string"


class _Definer:
    """Defines flags on ``fv`` as flags of the command module ``module``, one short call per flag."""

    def __init__(self, fv: flags.FlagValues, module: str) -> None:
        self.fv, self.module = fv, module

    def string(self, name: str, default: str | None, text: str) -> None:
        flags.DEFINE_string(name, default, text, flag_values=self.fv, module_name=self.module)

    def integer(self, name: str, default: int | None, text: str) -> None:
        flags.DEFINE_integer(name, default, text, flag_values=self.fv, module_name=self.module)

    def number(self, name: str, default: float | None, text: str) -> None:
        flags.DEFINE_float(name, default, text, flag_values=self.fv, module_name=self.module)

    def boolean(self, name: str, default: bool, text: str) -> None:
        flags.DEFINE_boolean(name, default, text, flag_values=self.fv, module_name=self.module)

    def listing(self, name: str, text: str, default: Sequence[str] | None = None) -> None:
        flags.DEFINE_list(
            name, None if default is None else list(default), text, flag_values=self.fv, module_name=self.module
        )

    def enum(self, name: str, default: str, values: Sequence[str], text: str) -> None:
        flags.DEFINE_enum(name, default, list(values), text, flag_values=self.fv, module_name=self.module)


def define_loss_flags(fv: flags.FlagValues, module: str, defaults: StyleConfig | TrainConfig) -> None:
    """Defines the loss flags on ``fv`` for the command module ``module``: the weights, pooling and layers, with the
    defaults of ``defaults`` (a StyleConfig for a stylization, with the blends of content layers and of styles; a
    TrainConfig for training). The config's ``validate`` checks their values."""
    define = _Definer(fv, module)
    blends = isinstance(defaults, StyleConfig)  # the content layers' blend and the styles' blend weights
    define.number("content_weight", defaults.content_weight, "Content loss weight.")
    define.number("style_weight", defaults.style_weight, "Style loss weight.")
    define.number("tv_weight", defaults.tv_weight, "Total variation (smoothness) weight.")
    define.number(
        "style_layer_weight_exp",
        defaults.style_layer_weight_exp,
        "Style layers weigh 1, e, e^2, ... in the order given (normalised to sum 1).",
    )
    define.enum("pooling", defaults.pooling, POOLING, "Pooling layers: max or avg.")
    blended = ", weighed by --content_weight_blend; other lists weigh their layers equally"
    weighed = blended if blends else ", weighed equally"
    define.listing(
        "content_layers",
        f"Comma-separated layers (default {','.join(defaults.content_layers)}){weighed}.",
        defaults.content_layers,
    )
    define.listing(
        "style_layers",
        f"Comma-separated layers (default {','.join(defaults.style_layers)}), weighed by --style_layer_weight_exp in "
        "the order given.",
        defaults.style_layers,
    )
    if isinstance(defaults, StyleConfig):
        blend = defaults.content_weight_blend
        define.number("content_weight_blend", blend, "Content layers: relu4_2 x blend + relu5_2 x (1 - blend).")
        define.listing("style_blend_weights", "One weight per style, normalised to sum 1 (default equal).")


def define_input_flags(fv: flags.FlagValues, module: str) -> None:
    """Defines --content, --styles and --network on ``fv`` for the command module ``module``."""
    define = _Definer(fv, module)
    define.string("content", None, "Content image.")
    define.listing("styles", "One or more style images, comma-separated.")
    define_network(fv, module)


def define_image_flags(fv: flags.FlagValues, module: str) -> None:
    """Defines how the network sees the images on ``fv`` for the command module ``module``: --width,
    --style_scales, --precision and --tile_size."""
    define = _Definer(fv, module)
    define.integer("width", None, "Output width in pixels; the height keeps the content's aspect ratio.")
    define.listing("style_scales", "One scale per style (default 1.0 each): style width = scale x output width.")
    define.enum(
        "precision",
        "float32",
        PRECISIONS,
        "Precision of the VGG convolutions; the image, Gram matrices, losses and optimiser stay float32. bfloat16 "
        "needs AVX512-BF16/AMX or a recent GPU; float16 needs a GPU.",
    )
    define.integer(
        "tile_size",
        None,
        "Evaluate images wider or taller than this many pixels tile by tile (rounded down to a multiple of 16): the "
        "same result in memory set by the tile. Default: whole, or what --max_memory needs.",
    )


def define_color_and_region_flags(fv: flags.FlagValues, module: str) -> None:
    """Defines --preserve_colors, --content_masks and --style_masks on ``fv`` for the command module ``module``:
    settings that change what a run's loss sees (neural-style's, and neural-style-score's to score such a run)."""
    define = _Definer(fv, module)
    flags.DEFINE_flag(
        flags.Flag(
            _ColorModeParser(),
            flags.ArgumentSerializer(),
            "preserve_colors",
            "none",
            "Keep the content's colours. Bare, or =luminance: luminance-only transfer (the style's luminance matched "
            "to the content's; the result's luminance with the content's colours). =histogram: the style images' "
            "colours matched to the content's (RGB mean and covariance) before stylization. =none: off.",
            boolean=True,
        ),
        flag_values=fv,
        module_name=module,
    )
    define.listing(
        "content_masks",
        "One grey-level mask per style, of the content's aspect ratio: where that style applies (white 1 .. black 0, "
        "soft edges allowed; overlapping masks weigh the styles; where all are black only content and tv apply).",
    )
    define.listing(
        "style_masks", "One mask per style image, of its aspect ratio: the part of it the style is taken from."
    )


def define_style_flags(fv: flags.FlagValues, module: str) -> None:
    """Defines every flag of ``neural-style`` (sweeps and video included) on ``fv`` for the command module
    ``module``."""
    define = _Definer(fv, module)
    define_input_flags(fv, module)
    define_loss_flags(fv, module, StyleConfig())
    define_image_flags(fv, module)
    define.string("output", None, "Output image; the format follows the extension (.png, .jpg, ...).")
    define.integer("iterations", 1000, "Adam steps.")
    define.integer("print_iterations", None, "Print all loss terms every this many iterations (and at the end).")
    define.string("checkpoint_output", None, "Checkpoint image name with {} or %d for the iteration, e.g. out_{}.jpg.")
    every = "Write the best image so far every this many iterations (with --checkpoint_output)."
    define.integer("checkpoint_iterations", None, every)
    define.boolean("progress_write", False, "Write the loss history to progress.txt beside the output.")
    define.boolean("progress_plot", False, "Plot the loss history (log scale) to progress.png beside the output.")
    define.number("learning_rate", 1e1, "Adam learning rate.")
    define.number("beta1", 0.9, "Adam beta1.")
    define.number("beta2", 0.999, "Adam beta2.")
    define.number("eps", 1e-8, "Adam epsilon.")
    define.string("initial", None, "Initial image (default: noise, or the content with --initial_noiseblend < 1).")
    define.number(
        "initial_noiseblend", None, "Share of noise in the initial image, 0..1 (default 0 with --initial, else 1)."
    )
    define_color_and_region_flags(fv, module)
    define.boolean("overwrite", False, "Replace output, checkpoint and progress files that already exist.")
    define.integer("seed", None, "Seed of the initial noise, for reproducible runs.")
    define.enum(
        "optimizer",
        "adam",
        OPTIMIZERS,
        "adam: an iteration is one Adam step. lbfgs: an iteration is one L-BFGS iteration, which may evaluate the "
        "loss several times; pixels are kept within 0..255.",
    )
    define.integer("lbfgs_memory", 10, "L-BFGS: number of past gradients kept (history size).")
    define.number(
        "stop_at_loss",
        None,
        "Stop as soon as the image as saved (clipped, rounded) has a total loss at or below this value; costs one "
        "forward pass per iteration.",
    )
    define.number(
        "tolerance",
        None,
        "Stop when the saved image's total loss improved by less than this fraction over the last 20 iterations; "
        "costs one forward pass per iteration.",
    )
    define.listing(
        "scales",
        "Coarse to fine: a count N (widths doubling up to the output width) or increasing widths such as "
        "128,256,512. The iterations are shared equally between stages (the remainder goes to the last), unless "
        "--stage_iterations gives them.",
    )
    define.listing(
        "stage_iterations",
        "With --scales: the iterations of each stage, coarse to fine, e.g. 40,20,2 (an iteration at half the width "
        "costs about a quarter); --iterations is their sum.",
    )
    define.boolean("xla", False, "Compile the optimisation step with XLA (jit_compile).")
    define.boolean(
        "clip",
        False,
        "Adam: clip the image to 0..255 after every step (projected Adam), so the optimiser's image is the one saved. "
        "L-BFGS always keeps to 0..255.",
    )
    define.number(
        "average_decay",
        None,
        "Save an exponential moving average of the iterates with this decay (e.g. 0.9) instead of the last one; "
        "often less high-frequency noise.",
    )
    define.boolean(
        "resume",
        False,
        "Continue the run saved in <output>.state (at checkpoints and on Ctrl-C); same settings needed. The "
        "result is that of an uninterrupted run.",
    )
    define.boolean("restart", False, "Discard the state of an interrupted run kept in <output>.state and start afresh.")
    define.string("tensorboard_dir", None, "Write loss terms (every iteration) and images for TensorBoard here.")
    define.integer("tensorboard_images", 100, "With --tensorboard_dir: write the current image every N iterations.")
    define.boolean(
        "checkpoint_sheet",
        False,
        "Write a contact sheet of the checkpoint images, <output>_checkpoints.<ext>, at the end.",
    )
    define.boolean(
        "memory_guard", True, "Refuse, before starting, a size whose estimated memory exceeds what is available."
    )
    define.string(
        "max_memory",
        None,
        "Peak memory budget, e.g. 8G or 500M: an image too large for it is evaluated in tiles (exact; slower) chosen "
        "to fit. The memory guard then checks the budget.",
    )
    _define_sweep_flags(define)
    _define_video_flags(define)


def _define_sweep_flags(define: _Definer) -> None:
    """The flags of a blend sweep (run by :mod:`neural_style.cli.sweep`)."""
    define.integer(
        "blend_sweep", None, "Sweep: K blends of two styles, evenly spaced from pure first to pure second style."
    )
    define.string("blends", None, "Sweep: blend vectors separated by ';', e.g. '1,0,0;0.5,0.5,0;0,0,1'.")
    define.listing("sweep_style_weights", "Sweep: style weights, e.g. 1e2,5e2,1e3 (combined with any blends).")
    define.integer("batch_size", None, "Sweep: most candidates optimised at once (default all); more run in turn.")
    define.string(
        "devices",
        "auto",
        "Sweep: split candidates across devices with tf.distribute.MirroredStrategy. 'auto': every GPU when there "
        "are two or more, or every worker TF_CONFIG lists (MultiWorkerMirroredStrategy) when it names two or more; "
        "'none': the default device only (TF_CONFIG ignored), or a list such as '/gpu:0,/gpu:1'.",
    )
    distribute.define_flags(define.fv, define.module, strategy=False)


def _define_video_flags(define: _Definer) -> None:
    """The flags of a video --content (run by :mod:`neural_style.cli.video`)."""
    define.number(
        "temporal_weight",
        TEMPORAL_WEIGHT,
        "Video: weight of the temporal term, the mean squared difference to the previous result warped by the "
        "optical flow on pixels where the flow is trusted (Ruder et al.'s 200 x the content weight); 0 makes every "
        "frame an independent run.",
    )
    define.integer(
        "frame_iterations",
        None,
        "Video: iterations of each frame that starts from a result: every frame but the first (default: "
        "--iterations / 2).",
    )
    define.number(
        "frame_learning_rate",
        None,
        "Video, Adam: step size of each frame that starts from a result (default: --learning_rate x "
        f"{FRAME_LEARNING_RATE_SHARE:g}: larger first steps shake a still scene).",
    )
    define.listing(
        "temporal_offsets",
        "Video: the earlier frames each frame is held close to, by distance, e.g. 1,2,5 (Ruder et al.'s long-term "
        "consistency: each pixel is compared with the nearest of them in which it was not occluded).",
        default=[str(offset) for offset in TEMPORAL_OFFSETS],
    )
    define.integer(
        "passes",
        1,
        "Video: passes over the clip, alternately forward and backward; each pass after the first starts every "
        "frame from its last result blended with its neighbour's (Ruder et al.'s multi-pass).",
    )


def flags_from_settings(settings: Mapping[str, object], module: str = __name__) -> flags.FlagValues:
    """neural-style's flags holding ``settings`` ({flag name: value}; the others keep their defaults), parsed and
    checked as the same command line would be: for a caller that holds settings rather than a command line.

    A value is given as on the command line: a bool as ``--name`` / ``--noname``, a list or tuple comma-separated,
    anything else as its text; None leaves the flag at its default.

    Raises:
        NeuralStyleError: an unknown name, or a value the flag refuses (a usage error, naming the flag).
    """
    fv = flags.FlagValues()
    define_style_flags(fv, module)
    argv = ["neural-style"]
    for name, value in settings.items():
        if name not in fv:
            raise NeuralStyleError(f"--{name} is not a setting of neural-style")
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(f"--{name}" if value else f"--no{name}")
        elif isinstance(value, list | tuple):
            argv.append(f"--{name}={','.join(str(v) for v in value)}")
        else:
            argv.append(f"--{name}={value}")
    try:
        fv(argv)
    except flags.Error as e:
        raise NeuralStyleError(str(e)) from None
    check_flag_values(fv)
    return fv


# ------------------------------------------------------------------------------------------------ settings


def checkpoint_path(pattern: str, iteration: int) -> str:
    """The checkpoint image of ``iteration``: ``pattern`` with ``{}`` or ``%d`` replaced by it."""
    return pattern.replace("{}", str(iteration)) if "{}" in pattern else pattern % iteration


def _check_checkpoint_flags(fv: flags.FlagValues) -> None:
    if (fv.checkpoint_output is None) != (fv.checkpoint_iterations is None):
        raise NeuralStyleError("--checkpoint_output and --checkpoint_iterations go together: give both or neither")
    if fv.checkpoint_output is not None:
        pattern = fv.checkpoint_output
        try:
            distinct = checkpoint_path(pattern, 1) != checkpoint_path(pattern, 2)
        except (TypeError, ValueError):
            distinct = False
        if not distinct:
            raise NeuralStyleError(
                f"--checkpoint_output '{pattern}' needs one placeholder for the iteration, "
                "{} or %d (e.g. out_{}.jpg)"
            )


def _check_style_list(styles: Sequence[str]) -> None:
    """--styles splits at commas: refuses a file whose own name holds a comma (an empty entry is refused, as in
    every list flag, by Command)."""
    for first in range(len(styles)):
        for last in range(first + 1, len(styles)):
            joined = ",".join(styles[first : last + 1])
            if not os.path.exists(styles[first]) and os.path.isfile(joined):
                raise NeuralStyleError(
                    f"--styles: the file {joined} has a comma in its name, but commas separate style images; "
                    "rename it (or link it under a name without a comma)"
                )


def style_config(fv: flags.FlagValues) -> StyleConfig:
    """The settings of a neural-style run, every flag they come from checked."""
    require(fv, "content", "the image whose content is kept")
    require(fv, "styles", "one or more style images, comma-separated")
    require(fv, "output", "where to write the result")
    check_sizes(fv)
    _check_checkpoint_flags(fv)
    max_memory(fv)
    return config_from_flags(fv)


def check_sizes(fv: flags.FlagValues) -> None:
    """Checks --styles (no comma in a file name), --style_scales (one positive scale per style) and --width."""
    _check_style_list(fv.styles)
    scales = floats("style_scales", fv.style_scales)
    if scales is not None and len(scales) != len(fv.styles):
        raise NeuralStyleError(f"--style_scales has {len(scales)} values for {len(fv.styles)} styles; give one each")
    if scales is not None and not all(s > 0 for s in scales):
        raise NeuralStyleError("--style_scales must be positive")
    if fv.width is not None and fv.width < 1:
        raise NeuralStyleError(f"--width is {fv.width}; it must be at least 1")


def config_from_flags(fv: flags.FlagValues) -> StyleConfig:
    """The StyleConfig of the settings flags ``fv`` holds (all of neural-style's, or a command's subset of them;
    the others keep their defaults), validated against the number of --styles."""
    settings = flag_settings(fv, [name for name in _CONFIG_FLAGS if name in fv])
    counts = stage_iterations(fv)
    if counts is not None:
        if fv["iterations"].present and fv.iterations != sum(counts):
            raise NeuralStyleError(
                f"--iterations is {fv.iterations} but --stage_iterations add up to {sum(counts)}; "
                "leave --iterations out (it is their sum)"
            )
        settings["iterations"] = sum(counts)
    config = StyleConfig(
        **settings,
        **({"epsilon": fv.eps} if "eps" in fv else {}),
        style_blend_weights=floats("style_blend_weights", fv.style_blend_weights),
        content_layers=tuple(fv.content_layers or ()),
        style_layers=tuple(fv.style_layers or ()),
    )
    config.validate(len(fv.styles))
    for name in ("content_masks", "style_masks"):
        masks = fv[name].value if name in fv else None
        if masks is not None and len(masks) != len(fv.styles):
            raise NeuralStyleError(f"--{name} has {len(masks)} masks for {len(fv.styles)} styles; give one per style")
    return config
