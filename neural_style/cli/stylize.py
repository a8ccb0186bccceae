"""The ``neural-style`` command: its flags, the checked settings, and one output image (or a sweep) written.

Every input is checked before TensorFlow is imported, so a mistake costs a fraction of a second and one line on
stderr. A single run is made of parts that each do one job: :class:`Inputs` (the images at the output size and the
network), :class:`Stages` (coarse to fine), :class:`SavedState` (what ``--resume`` continues), :class:`RunReport`
(progress and loss lines, the history, TensorBoard, checkpoint images and sheet) and :class:`SingleRun`, which runs
the loop and writes the output, also on Ctrl-C. Sweeps are in :mod:`neural_style.cli.sweep`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from absl import flags

from neural_style.cli import report
from neural_style.cli import sweep as sweep_cli
from neural_style.cli import video as video_cli
from neural_style.cli.command import (
    Command,
    Interruption,
    RunHooks,
    check_directory_target,
    check_distinct,
    check_writable,
    define_network,
    flag_settings,
    floats,
    interrupted_by,
    network_path,
    require,
    start_tensorflow,
)
from neural_style.config import COLOR_MODES, CONTENT_LAYERS, OPTIMIZERS, POOLING, PRECISIONS, STYLE_LAYERS, StyleConfig
from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    import numpy as np

    from neural_style.matconvnet import VggWeights
    from neural_style.regions import Regions
    from neural_style.run_state import RunState
    from neural_style.stylization import Progress, Stylization

__all__ = [
    "SETTING_FLAGS",
    "Inputs",
    "RunReport",
    "SavedState",
    "SingleRun",
    "Stages",
    "check_memory",
    "check_saved_state",
    "check_sizes",
    "checkpoint_path",
    "config_from_flags",
    "fingerprint",
    "flag_values",
    "main",
    "outputs",
    "state_dir",
    "style_config",
    "stylize_to_files",
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


_USAGE = """Usage: neural-style --content IMAGE --styles STYLE[,STYLE...] --output FILE [flags]

Blends the style of one or more images into a content image (Gatys et al.), as neural-style does.
"""


def flag_values() -> flags.FlagValues:
    """The flags of ``neural-style``, sweep flags included, on a fresh FlagValues."""
    fv = flags.FlagValues()

    def string(name: str, default: str | None, text: str) -> None:
        flags.DEFINE_string(name, default, text, flag_values=fv, module_name=__name__)

    def integer(name: str, default: int | None, text: str) -> None:
        flags.DEFINE_integer(name, default, text, flag_values=fv, module_name=__name__)

    def number(name: str, default: float | None, text: str) -> None:
        flags.DEFINE_float(name, default, text, flag_values=fv, module_name=__name__)

    def boolean(name: str, default: bool, text: str) -> None:
        flags.DEFINE_boolean(name, default, text, flag_values=fv, module_name=__name__)

    def listing(name: str, text: str) -> None:
        flags.DEFINE_list(name, None, text, flag_values=fv, module_name=__name__)

    def enum(name: str, default: str, values: Sequence[str], text: str) -> None:
        flags.DEFINE_enum(name, default, list(values), text, flag_values=fv, module_name=__name__)

    string("content", None, "Content image.")
    listing("styles", "One or more style images, comma-separated.")
    string("output", None, "Output image; the format follows the extension (.png, .jpg, ...).")
    integer("iterations", 1000, "Adam steps.")
    integer("print_iterations", None, "Print all loss terms every this many iterations (and at the end).")
    string("checkpoint_output", None, "Checkpoint image name with {} or %d for the iteration, e.g. out_{}.jpg.")
    every = "Write the best image so far every this many iterations (with --checkpoint_output)."
    integer("checkpoint_iterations", None, every)
    boolean("progress_write", False, "Write the loss history to progress.txt beside the output.")
    boolean("progress_plot", False, "Plot the loss history (log scale) to progress.png beside the output.")
    integer("width", None, "Output width in pixels; the height keeps the content's aspect ratio.")
    listing("style_scales", "One scale per style (default 1.0 each): style width = scale x output width.")
    define_network(fv, __name__)
    number("content_weight", 5e0, "Content weight.")
    number("content_weight_blend", 1.0, "Content layers: relu4_2 x blend + relu5_2 x (1 - blend).")
    number("style_weight", 5e2, "Style weight.")
    number(
        "style_layer_weight_exp", 1.0, "Style layer weights grow by this factor from relu1_1 to relu5_1 (normalised)."
    )
    listing("style_blend_weights", "One weight per style, normalised to sum 1 (default equal).")
    number("tv_weight", 1e2, "Total variation (smoothness) weight.")
    number("learning_rate", 1e1, "Adam learning rate.")
    number("beta1", 0.9, "Adam beta1.")
    number("beta2", 0.999, "Adam beta2.")
    number("eps", 1e-8, "Adam epsilon.")
    string("initial", None, "Initial image (default: noise, or the content with --initial_noiseblend < 1).")
    number("initial_noiseblend", None, "Share of noise in the initial image, 0..1 (default 0 with --initial, else 1).")
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
        module_name=__name__,
    )
    listing_default = "Comma-separated layers (default {}){}."
    flags.DEFINE_list(
        "content_layers",
        list(CONTENT_LAYERS),
        listing_default.format(
            ",".join(CONTENT_LAYERS), ", weighed by --content_weight_blend; other lists weigh their layers equally"
        ),
        flag_values=fv,
        module_name=__name__,
    )
    flags.DEFINE_list(
        "style_layers",
        list(STYLE_LAYERS),
        listing_default.format(",".join(STYLE_LAYERS), ", weighed by --style_layer_weight_exp in the order given"),
        flag_values=fv,
        module_name=__name__,
    )
    listing(
        "content_masks",
        "One grey-level mask per style, of the content's aspect ratio: where that style applies (white 1 .. black 0, "
        "soft edges allowed; overlapping masks weigh the styles; where all are black only content and tv apply).",
    )
    listing("style_masks", "One mask per style image, of its aspect ratio: the part of it the style is taken from.")
    enum("pooling", "max", POOLING, "Pooling layers: max or avg.")
    boolean("overwrite", False, "Replace output, checkpoint and progress files that already exist.")
    integer("seed", None, "Seed of the initial noise, for reproducible runs.")
    enum(
        "optimizer",
        "adam",
        OPTIMIZERS,
        "adam: an iteration is one Adam step. lbfgs: an iteration is one L-BFGS-B iteration (scipy), which may "
        "evaluate the loss several times; pixels are kept within 0..255.",
    )
    integer("lbfgs_memory", 10, "L-BFGS: number of past gradients kept (history size).")
    number(
        "stop_at_loss",
        None,
        "Stop as soon as the image as saved (clipped, rounded) has a total loss at or below this value; costs one "
        "forward pass per iteration.",
    )
    number(
        "tolerance",
        None,
        "Stop when the saved image's total loss improved by less than this fraction over the last 20 iterations; "
        "costs one forward pass per iteration.",
    )
    listing(
        "scales",
        "Coarse to fine: a count N (widths doubling up to the output width) or increasing widths such as "
        "128,256,512. The iterations are shared equally between stages (the remainder goes to the last).",
    )
    enum(
        "precision",
        "float32",
        PRECISIONS,
        "Precision of the VGG convolutions; the image, Gram matrices, losses and optimiser stay float32. bfloat16 "
        "needs AVX512-BF16/AMX or a recent GPU; float16 needs a GPU.",
    )
    boolean("xla", False, "Compile the optimisation step with XLA (jit_compile).")
    boolean(
        "clip",
        False,
        "Adam: clip the image to 0..255 after every step (projected Adam), so the optimiser's image is the one saved. "
        "L-BFGS always keeps to 0..255.",
    )
    number(
        "average_decay",
        None,
        "Save an exponential moving average of the iterates with this decay (e.g. 0.9) instead of the last one; "
        "often less high-frequency noise.",
    )
    resume = (
        "Continue the run saved in <output>.state (at checkpoints and on Ctrl-C); same settings needed. L-BFGS "
        "continues from the saved image with a fresh history."
    )
    boolean("resume", False, resume)
    boolean("restart", False, "Discard the state of an interrupted run kept in <output>.state and start afresh.")
    string("tensorboard_dir", None, "Write loss terms (every iteration) and images for TensorBoard here.")
    integer("tensorboard_images", 100, "With --tensorboard_dir: write the current image every N iterations.")
    boolean(
        "checkpoint_sheet",
        False,
        "Write a contact sheet of the checkpoint images, <output>_checkpoints.<ext>, at the end.",
    )
    boolean("memory_guard", True, "Refuse, before starting, a size whose estimated memory exceeds what is available.")
    string(
        "max_memory",
        None,
        "Peak memory budget, e.g. 8G or 500M: an image too large for it is evaluated in tiles (exact; slower) chosen "
        "to fit. The memory guard then checks the budget.",
    )
    integer(
        "tile_size",
        None,
        "Evaluate images wider or taller than this many pixels tile by tile (rounded down to a multiple of 16): the "
        "same result in memory set by the tile. Default: whole, or what --max_memory needs.",
    )
    sweep_cli.define_flags(fv, __name__)
    video_cli.define_flags(fv, __name__)
    return fv


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``neural-style``: exits 2 on bad input, 1 when the run fails, 130 on Ctrl-C."""
    fv = flag_values()
    command = Command("neural-style", fv, _USAGE, __name__, setting_flags=SETTING_FLAGS)
    command.run(argv, lambda _: stylize_to_files(fv))


# ------------------------------------------------------------------------------------------------ settings


def checkpoint_path(pattern: str, iteration: int) -> str:
    """The checkpoint image of ``iteration``: ``pattern`` with ``{}`` or ``%d`` replaced by it."""
    return pattern.replace("{}", str(iteration)) if "{}" in pattern else pattern % iteration


def state_dir(output: str) -> str:
    """Where the resumable state of ``output`` lives: ``<output>.state/``."""
    return f"{output}.state"


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
    """The settings of the run, every flag they come from checked."""
    require(fv, "content", "the image whose content is kept")
    require(fv, "styles", "one or more style images, comma-separated")
    require(fv, "output", "where to write the result")
    check_sizes(fv)
    _check_checkpoint_flags(fv)
    max_memory(fv)
    return config_from_flags(fv)


def max_memory(fv: flags.FlagValues) -> int | None:
    """--max_memory in bytes, or None."""
    from neural_style.memory import parse_size

    if fv.max_memory is None:
        return None
    try:
        return parse_size(fv.max_memory)
    except ValueError:
        raise NeuralStyleError(f"--max_memory '{fv.max_memory}' is not a size; give e.g. 8G, 1.5G or 500M") from None


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
    config = StyleConfig(
        **flag_settings(fv, [name for name in _CONFIG_FLAGS if name in fv]),
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


def check_saved_state(fv: flags.FlagValues) -> None:
    """--resume and --restart against ``<output>.state``: a saved run is never discarded silently, nor resumed
    when there is none."""
    saved = os.path.isfile(os.path.join(state_dir(fv.output), "checkpoint"))
    if fv.resume and fv.restart:
        raise NeuralStyleError("--resume continues the saved run and --restart discards it; give one of them")
    if saved and not (fv.resume or fv.restart):
        raise NeuralStyleError(
            f"{state_dir(fv.output)} holds an interrupted run of --output {fv.output}: continue it with --resume, "
            "or pass --restart to discard it and start afresh"
        )
    if fv.resume and not saved:
        raise NeuralStyleError(f"--resume: no saved state in {state_dir(fv.output)}; run without --resume")


def input_files(fv: flags.FlagValues) -> list[tuple[str, str | None]]:
    """(how to name it, path) of every file neural-style reads, for :func:`check_distinct`."""
    network = fv.network if fv["network"].present or os.path.exists(fv.network) else None
    styles = [(f"--styles image {path}" if len(fv.styles) > 1 else "--styles image", path) for path in fv.styles]
    masks = [
        (f"--{name} mask {path}", path) for name in ("content_masks", "style_masks") for path in fv[name].value or ()
    ]
    return [
        ("--content image", fv.content),
        *styles,
        ("--initial image", fv.initial),
        ("--network file", network),
        *masks,
    ]


def outputs(fv: flags.FlagValues, config: StyleConfig) -> dict[str, str]:
    """Every file a single run will write, checked before any work: {purpose: path}."""
    paths = {"output": fv.output}
    names = {"output": "--output"}
    if fv.checkpoint_output:
        assert config.checkpoint_iterations is not None
        for k in range(config.checkpoint_iterations, config.iterations + 1, config.checkpoint_iterations):
            paths[f"checkpoint {k}"] = checkpoint_path(fv.checkpoint_output, k)
            names[f"checkpoint {k}"] = f"--checkpoint_output (iteration {k})"
    directory = os.path.dirname(os.path.abspath(fv.output))
    if fv.progress_write:
        paths["progress_write"] = os.path.join(directory, "progress.txt")
    if fv.progress_plot:
        paths["progress_plot"] = os.path.join(directory, "progress.png")
    if fv.checkpoint_sheet:
        if not config.checkpoint_iterations:
            raise NeuralStyleError("--checkpoint_sheet needs --checkpoint_iterations (and --checkpoint_output)")
        paths["checkpoint_sheet"] = sweep_cli.candidate_path(fv.output, "checkpoints")
    check_distinct(
        input_files(fv), [(names.get(purpose, f"--{purpose} file"), path) for purpose, path in paths.items()]
    )
    # A resumed run rewrites its own files: the output written on Ctrl-C, earlier checkpoints, the history.
    overwrite = fv.overwrite or fv.resume
    for purpose, path in paths.items():
        if purpose == "progress_write":
            if os.path.isdir(path):
                raise NeuralStyleError(f"{path} is a directory (--progress_write); move it or write elsewhere")
            if os.path.exists(path) and not overwrite:
                raise NeuralStyleError(f"{path} already exists (--progress_write); pass --overwrite or move it")
            continue
        check_writable(path, overwrite=overwrite, what=names.get(purpose, f"--{purpose}"))
    check_saved_state(fv)
    if fv.tensorboard_images < 1:
        raise NeuralStyleError(f"--tensorboard_images is {fv.tensorboard_images}; it must be at least 1")
    if fv.tensorboard_dir:
        check_directory_target(fv.tensorboard_dir, "tensorboard_dir")
    return paths


# ------------------------------------------------------------------------------------------------ inputs


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
    if budget is None:
        return tile
    tiled = memory.tile_plan(vgg, deepest, tile, height, width) is not None
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
    raise NeuralStyleError(
        f"{size} needs about {needed / gib:.1f} GiB but {budget / gib:.1f} GiB is {where}; "
        f"use --width {fits} or less{hints} (or --nomemory_guard)"
    )


def _check_precision(precision: str) -> None:
    """Refuses a precision the hardware has no fast support for, instead of running slower than float32."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        needed = (8, 0) if precision == "bfloat16" else (7, 0)
        if tuple(capability) < needed:
            raise NeuralStyleError(
                f"--precision {precision} needs a GPU of compute capability {needed[0]}.{needed[1]} or newer; "
                f"this one is {capability[0]}.{capability[1]}: use --precision float32"
            )
        return
    if precision == "float16":
        raise NeuralStyleError("--precision float16 is for GPUs (none is visible); use bfloat16 or float32")
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            cpu_flags = f.read()
    except OSError:
        cpu_flags = ""
    if "avx512_bf16" not in cpu_flags and "amx_bf16" not in cpu_flags:
        raise NeuralStyleError(
            "--precision bfloat16 needs a CPU with AVX512-BF16 or AMX (or a recent GPU); this one would run it "
            "slower than float32: use --precision float32"
        )


def read_regions(fv: flags.FlagValues, content: np.ndarray, styles: Sequence[np.ndarray]) -> Regions | None:
    """The masks of --content_masks and --style_masks, read and checked against the images (None without them)."""
    from neural_style.image_io import read_image
    from neural_style.regions import Regions, mask_from_image

    if fv.content_masks is None and fv.style_masks is None:
        return None

    def masks(name: str) -> tuple[np.ndarray, ...] | None:
        paths: list[str] | None = fv[name].value
        if paths is None:
            return None
        return tuple(mask_from_image(read_image(path, what=f"--{name} mask")) for path in paths)

    regions = Regions(masks("content_masks"), masks("style_masks"))
    regions.check(
        content.shape, [style.shape for style in styles], content_names=fv.content_masks, style_names=fv.style_masks
    )
    return regions


@dataclasses.dataclass
class Inputs:
    """What a run reads, checked: the images (content and initial at the output size, styles as read) and the
    network."""

    content: np.ndarray
    styles: list[np.ndarray]
    initial: np.ndarray | None
    vgg: VggWeights
    regions: Regions | None = None
    tile_size: int | None = None  # --tile_size, or the tile --max_memory needs; None: untiled

    @classmethod
    def read(cls, fv: flags.FlagValues, config: StyleConfig, batch: int) -> tuple[Inputs, Stages]:
        """Reads the images and the network, checks the size (memory, precision) and plans the stages.

        Nothing is resized before the memory guard has seen the size.
        """
        from neural_style.image_io import read_image, resize, scaled_size
        from neural_style.matconvnet import default_cache_dir, load_vgg

        content = read_image(fv.content, what="--content image", min_width=fv.width)
        height, width = content.shape[:2] if fv.width is None else scaled_size(content.shape, fv.width)
        if min(height, width) < 2:
            raise NeuralStyleError(
                f"the output would be {width}x{height} pixels; it needs at least 2x2 (check --content and --width)"
            )
        height, width = int(height), int(width)
        scales = floats("style_scales", fv.style_scales) or (1.0,) * len(fv.styles)
        styles = [
            read_image(path, what="--styles image", min_width=math.ceil(scale * width))
            for path, scale in zip(fv.styles, scales, strict=True)
        ]
        initial = read_image(fv.initial, what="--initial image", min_width=fv.width) if fv.initial else None
        regions = read_regions(fv, content, styles)
        stages = Stages.plan(fv, width, config.iterations)
        vgg = load_vgg(network_path(fv), cache_dir=default_cache_dir())
        config.validate(len(styles), vgg.layer_names)
        tile_size = check_memory(fv, vgg, height, width, batch, config)
        start_tensorflow()  # every input is good: from here on TensorFlow is needed
        if config.precision != "float32":
            _check_precision(config.precision)
        content = resize(content, (height, width))
        initial = None if initial is None else resize(initial, (height, width))
        return cls(content, styles, initial, vgg, regions, tile_size), stages


@dataclasses.dataclass(frozen=True)
class Stages:
    """The coarse-to-fine stages (--scales): the width and iterations of each; one stage without --scales."""

    widths: list[int]
    iterations: list[int]

    @classmethod
    def plan(cls, fv: flags.FlagValues, width: int, iterations: int) -> Stages:
        """The stages of --scales for an output ``width`` pixels wide and ``iterations`` in all."""
        from neural_style import coarse

        if fv.scales is None:
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


def _deepest(vgg: VggWeights, config: StyleConfig) -> str:
    """The deepest layer a run's losses use (it decides the tiles' halo)."""
    return max([*config.weighted_content_layers, *config.style_layers], key=vgg.layer_names.index)


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


# ------------------------------------------------------------------------------------------------ resumable state


def fingerprint(fv: flags.FlagValues, config: StyleConfig, vgg: VggWeights, stages: Stages) -> dict[str, object]:
    """The settings a saved state must share with this run to be resumed by it.

    The iterations may grow for a single stage (to continue a finished run further); with --scales they decide
    every stage's share, so the whole plan must be the same.
    """
    from neural_style.run_state import file_sha256

    # Tiling changes the memory a run takes, not its result: a run may resume with other tiles.
    skip = {"iterations", "print_iterations", "checkpoint_iterations", "tile_size"}
    settings: dict[str, object] = {f"--{k}": v for k, v in dataclasses.asdict(config).items() if k not in skip}
    settings["--content"] = file_sha256(fv.content)
    settings["--styles"] = [file_sha256(path) for path in fv.styles]
    settings["--initial"] = file_sha256(fv.initial) if fv.initial else None
    settings["--width"] = fv.width
    settings["--style_scales"] = fv.style_scales
    settings["--network"] = vgg.md5
    plan = {"widths": stages.widths, "iterations": stages.iterations}
    settings["--scales"] = None if len(stages.widths) == 1 else plan
    for name in ("content_masks", "style_masks"):
        paths: list[str] | None = fv[name].value
        if paths is not None:  # absent from the fingerprints of runs without masks, which stay resumable
            settings[f"--{name}"] = [file_sha256(path) for path in paths]
    return json.loads(json.dumps(settings))  # tuples become lists, as they come back from the saved state


class SavedState:
    """The resumable state of a single run in ``<output>.state``: a RunState of the current stage's Stylization, its
    stage number and the settings fingerprint, saved at checkpoints and on Ctrl-C (the finished run deletes it).

    Each stage saves into the same directory as the one before it, so the newest state is always the furthest stage
    reached; the older ones go as newer ones are complete (a kill -9 mid-write leaves the previous one).
    """

    def __init__(self, fv: flags.FlagValues, run: Stylization, stage: int, settings: dict[str, object]) -> None:
        import tensorflow as tf

        from neural_style.run_state import RunState

        self.directory = state_dir(fv.output)
        self.stage = stage
        self.state: RunState = RunState(
            self.directory,
            {"run": run.state, "stage": tf.Variable(stage, dtype=tf.int64, trainable=False)},
            settings,
            max_to_keep=2,
            checkpoint_name="state",
        )

    @staticmethod
    def saved_stage(fv: flags.FlagValues) -> int:
        """The stage of the newest saved state in ``<output>.state`` (to build that stage's run before restoring)."""
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(state_dir(fv.output))
        if latest is None:
            raise NeuralStyleError(f"--resume: no saved state in {state_dir(fv.output)}; run without --resume")
        try:
            return int(tf.train.load_variable(latest, "stage/.ATTRIBUTES/VARIABLE_VALUE"))
        except (tf.errors.OpError, ValueError):
            raise NeuralStyleError(
                f"--resume: {latest} is not a saved neural-style run; pass --restart to start afresh"
            ) from None

    def resume(self, run: Stylization, stages: Stages, optimizer: str) -> None:
        """Restores the saved state into ``run`` (the saved stage's) and says where the run continues, once."""
        try:
            restored = self.state.restore()
        except NeuralStyleError as e:
            raise NeuralStyleError(f"--resume: {e}", usage=e.usage) from None
        if restored is None:
            raise NeuralStyleError(f"--resume: no saved state in {self.directory}; run without --resume")
        done = run.iteration
        if done >= stages.iterations[self.stage]:
            total = stages.offsets[self.stage] + done
            raise NeuralStyleError(
                f"--resume: the saved run is at iteration {total}; give --iterations above {total} to continue it"
            )
        where = f"Resumed at iteration {stages.offsets[self.stage] + done}/{sum(stages.iterations)}"
        if len(stages.widths) > 1:
            where += f", scale {self.stage + 1}/{len(stages.widths)} ({stages.widths[self.stage]} px)"
        if optimizer == "lbfgs":
            where += "; L-BFGS continues from the saved image with a fresh history"
        print(where)

    def save(self) -> None:
        """Saves the run's state now."""
        self.state.save()


# ------------------------------------------------------------------------------------------------ reporting


class RunReport:
    """Everything a single run reports as it goes: progress lines with an ETA, loss lines and their history,
    TensorBoard records, checkpoint images and the checkpoint sheet; and the best image so far."""

    def __init__(self, fv: flags.FlagValues, config: StyleConfig, stages: Stages, paths: dict[str, str], start: float):
        self.fv, self.config, self.stages, self.paths = fv, config, stages, paths
        self.clock = report.EtaClock(config.iterations, start)
        self.history = report.LossHistory()
        self.sheet: list[tuple[int, np.ndarray]] = []
        self.evaluations = [0] * len(stages.widths)  # L-BFGS evaluations of each stage so far
        self.best: np.ndarray | None = None
        self.writer: Any = None
        self._tile_shown = self._tile_started = time.monotonic()
        if fv.tensorboard_dir:
            import tensorflow as tf

            self.writer = tf.summary.create_file_writer(fv.tensorboard_dir)

    def record(self, stage: int, done: int, record: Progress, run: Stylization | None) -> None:
        """Reports a record of ``stage``, ``done`` iterations into the whole run (``run``: the stage's
        Stylization, when it is one, for the current image)."""
        line = self.clock.tick(done if record.iteration > 0 else None, self._extra(stage, record))
        if line is not None:
            print(line)
        if self.writer is not None and record.step_losses is not None:
            self._tensorboard(done, record, run)
        if record.losses is not None and (record.iteration > 0 or stage == 0):
            if record.iteration > 0 or self.config.print_iterations:
                report.print_losses(record.losses)
            if record.final and record.image_losses is not None and stage == len(self.stages.widths) - 1:
                print(f"{'saved image:':>13s} total loss {float(record.image_losses['total'][0]):g} (0..255, rounded)")
            self.history.add(done, record.losses)  # the start's row too: the history begins before the first step
        if record.image is not None:
            self.best = record.image
            if self.is_checkpoint(done):
                if self.fv.checkpoint_output:
                    _write(checkpoint_path(self.fv.checkpoint_output, done), record.image)
                if self.fv.checkpoint_sheet:
                    self.sheet.append((done, record.image))

    def tile(self, done: int, total: int) -> None:
        """After each tile (of the targets, of a loss evaluation, of a loss-and-gradient evaluation): a line at most
        every 10 s, so a long iteration shows it is alive, and one at the end of a pass over the tiles that took that
        long."""
        now = time.monotonic()
        if done == 1:
            self._tile_started = self._tile_shown = now
        elapsed = report.hms(now - self._tile_started)
        if done == total and now - self._tile_started >= 10.0:
            print(f"  {done}/{total} tiles in {elapsed}", flush=True)
        elif done < total and now - self._tile_shown >= 10.0:
            self._tile_shown = now
            print(f"  {done}/{total} tiles ({elapsed} so far)", flush=True)

    def is_checkpoint(self, done: int) -> bool:
        """Whether ``done`` iterations is a checkpoint (--checkpoint_iterations)."""
        every = self.config.checkpoint_iterations
        return every is not None and done % every == 0

    def _extra(self, stage: int, record: Progress) -> str:
        extra = f" (scale {stage + 1}/{len(self.stages.widths)})" if len(self.stages.widths) > 1 else ""
        if record.evaluations is not None:
            self.evaluations[stage] = record.evaluations
            extra += f" [{sum(self.evaluations)} evaluations]"
        return extra

    def _tensorboard(self, done: int, record: Progress, run: Stylization | None) -> None:
        assert record.step_losses is not None
        with self.writer.as_default():
            for key, value in record.step_losses.items():  # the losses of the image the step started from
                report.scalar_summary(f"loss/{key}", float(value[0]), step=done - 1)
            if done % self.fv.tensorboard_images == 0 or record.final:
                image = run.current_images() if run is not None else record.images
                if image is not None:
                    report.image_summary("image", image[:1], step=done)
        self.writer.flush()

    def write_history(self) -> None:
        """Writes progress.txt / progress.png as asked (--progress_write, --progress_plot)."""
        self.history.write(self.paths.get("progress_write"), self.paths.get("progress_plot"))

    def finish(self) -> None:
        """Writes the history and the checkpoint sheet at the end of the run."""
        self.write_history()
        if self.sheet:
            images = [image for _, image in self.sheet]
            captions = [f"iteration {k}" for k, _ in self.sheet]
            _write(self.paths["checkpoint_sheet"], report.contact_sheet(images, captions))


def _write(path: str, image: Any) -> None:
    """Writes an image (an RGB array in 0..255 or a PIL image) to ``path``."""
    from neural_style.image_io import write_image

    write_image(path, image)


# ------------------------------------------------------------------------------------------------ the single run


class SingleRun:
    """One output image: the stages' records through the report, the state saved at checkpoints, the output written
    at the end or on Ctrl-C / SIGTERM (exit 130), or the best image so far when the loss stops being finite."""

    def __init__(
        self,
        fv: flags.FlagValues,
        inputs: Inputs,
        config: StyleConfig,
        stages: Stages,
        paths: dict[str, str],
        start: float,
        hooks: RunHooks | None = None,
    ) -> None:
        self.fv, self.inputs, self.config, self.stages, self.start = fv, inputs, config, stages, start
        self.hooks = hooks  # a program driving the run in-process (see RunHooks); None: the command's own
        self.report = RunReport(fv, config, stages, paths, start)
        self.run_object: Stylization | None = None  # the current stage's
        self.stage = 0
        self.saved: SavedState | None = None

    def records(self) -> Iterator[tuple[int, Progress]]:
        """(stage, record) pairs, each stage a resumable Stylization (one stage without --scales)."""
        from neural_style.coarse import stage_runs

        inputs, config, stages = self.inputs, self.config, self.stages
        if self.fv.restart and os.path.isdir(state_dir(self.fv.output)):
            shutil.rmtree(state_dir(self.fv.output))  # asked for: the interrupted run is given up
        first = SavedState.saved_stage(self.fv) if self.fv.resume else 0
        if not 0 <= first < len(stages.widths):
            raise NeuralStyleError(f"--resume: the saved run is at a stage this run does not have ({first + 1})")
        settings = fingerprint(self.fv, config, inputs.vgg, stages)
        runs = stage_runs(
            inputs.vgg,
            inputs.content,
            inputs.styles,
            config,
            widths=stages.widths,
            iterations=stages.iterations,
            style_scales=floats("style_scales", self.fv.style_scales),
            initial=inputs.initial,
            regions=inputs.regions,
            first=first,
            on_tile=self.report.tile,
        )
        for stage, run in runs:
            self.run_object, self.stage = run, stage
            self.saved = None if run.state is None else SavedState(self.fv, run, stage, settings)
            if self.fv.resume and stage == first:
                assert self.saved is not None  # a single run's engine can always be saved
                self.saved.resume(run, stages, config.optimizer)
                done = stages.offsets[stage] + run.iteration
                self.report.history.continue_from(self.report.paths.get("progress_write"), done)
            for record in run:
                yield stage, record

    def run(self) -> None:
        """Runs to the end and writes the output; exits 130 on Ctrl-C / SIGTERM after writing what it has."""
        from neural_style.errors import NonFiniteLossError

        content = self.inputs.content
        network = self.fv.network if self.fv["network"].present else "found by default"
        styles = len(self.inputs.styles)
        print(f"Stylizing {content.shape[1]}x{content.shape[0]} with {styles} style(s), network {network}")
        plan = self.stages.describe()
        if plan is not None:
            print(plan)
        tiles = describe_tiles(self.inputs.vgg, self.config, *content.shape[:2])
        if tiles is not None:
            print(tiles)
        with interrupted_by(self.hooks) as interruption:
            try:
                stopped = self._loop(interruption)
            except NonFiniteLossError as e:
                self.report.write_history()
                if e.best is None:
                    message = f"{e}; no checkpoint was reached, so no image was written"
                    raise NeuralStyleError(message, usage=False) from None
                _write(self.fv.output, e.best[0])
                raise NeuralStyleError(f"{e}; the best image so far is in {self.fv.output}", usage=False) from None
            if stopped:
                assert interruption.reason is not None
                self._stop(interruption.reason)
        self.report.finish()
        if self.saved is not None:
            self.saved.state.remove()  # the run is complete: nothing left to resume
        print(f"Wrote {self.fv.output} in {report.hms(time.time() - self.start)}")

    def _loop(self, interruption: Interruption) -> bool:
        """Reports every record; returns whether ``interruption`` stopped the run before its last record."""
        offsets = self.stages.offsets
        last_stage = len(self.stages.widths) - 1
        for stage, record in self.records():
            done = offsets[stage] + record.iteration
            self.report.record(stage, done, record, self.run_object)
            if record.image is not None:
                if self.saved is not None and not record.final:  # a checkpoint of the stage
                    self.saved.save()
                if record.final and stage == last_stage:
                    _write(self.fv.output, record.image)
            if self.hooks is not None:
                if self.saved is not None and not record.final and record.image is None and self.hooks.save_due():
                    self.saved.save()
                total = self.config.iterations
                remaining = self.report.clock.remaining(done)
                self.hooks.record(done, total, record, self.run_object, remaining=remaining)
            if interruption and not record.final:
                return True
        return False

    def _stop(self, why: str) -> NoReturn:
        """Ctrl-C / SIGTERM: the best image so far to the output, the state saved, how to resume; exit 130."""
        self.report.write_history()
        image = self.report.best
        if self.run_object is not None:
            best = self.run_object.best_images()
            image = best[0] if best is not None else self.run_object.current_images()[0]
        if image is not None and image.shape != self.inputs.content.shape:  # stopped in a coarse stage
            from neural_style.image_io import resize

            image = resize(image, self.inputs.content.shape[:2])
        output = self.fv.output
        if image is not None:
            _write(output, image)
        wrote = f"wrote the best image so far to {output}" if image is not None else "no image written"
        if self.saved is not None:
            self.saved.save()
            dropped = ("--resume", "--noresume", "--restart", "--norestart")
            again = shlex.join(["neural-style", *(a for a in sys.argv[1:] if a not in dropped)])
            hint = f"; resume with: {again} --resume"
        else:
            hint = ""
        it = None if self.run_object is None else self.stages.offsets[self.stage] + self.run_object.iteration
        where = f" at iteration {it}" if it is not None else ""
        print(f"neural-style: {why}{where}: {wrote}{hint}", file=sys.stderr)
        sys.exit(130)


# ------------------------------------------------------------------------------------------------ the command


def stylize_to_files(fv: flags.FlagValues, hooks: RunHooks | None = None) -> None:
    """The work of ``neural-style`` on parsed flags: checks, reads, runs and writes (``hooks``: a program driving
    the run in its own process, see :class:`neural_style.cli.command.RunHooks`)."""
    start = time.time()
    config = style_config(fv)
    video_cli.check_styles(fv)
    if video_cli.is_video_run(fv):
        sweep_cli.check_cluster(fv, None, video=True)
        video_cli.run(fv, config, start)
        return
    sweep = sweep_cli.plan(fv)
    cluster = sweep_cli.check_cluster(fv, sweep)
    paths = outputs(fv, config) if sweep is None else sweep_cli.outputs(fv, sweep, input_files(fv))
    batch = 1 if sweep is None else (fv.batch_size or len(sweep.candidates))
    inputs, stages = Inputs.read(fv, config, batch)
    config = dataclasses.replace(config, tile_size=inputs.tile_size)
    if hooks is not None:
        hooks.ready()
    if sweep is not None:
        sweep_cli.run(
            fv,
            inputs.vgg,
            inputs.content,
            inputs.styles,
            inputs.initial,
            config,
            sweep,
            paths,
            start,
            inputs.regions,
            cluster,
            hooks,
        )
        return
    SingleRun(fv, inputs, config, stages, paths, start, hooks).run()
