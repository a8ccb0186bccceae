"""The ``neural-style-score`` command: the loss terms of image files under the settings of a ``neural-style`` run.

``neural-style-score --network FILE --content IMAGE --styles STYLE[,STYLE...] [settings] IMAGE [IMAGE...]`` prints
one line per IMAGE with its content, style, tv and total terms, as the objective of a run at that image's size sees
the file's pixels (clipped and 8-bit, as saved). The settings flags are ``neural-style``'s own (the same definitions:
names, defaults, meaning). Every input is checked before TensorFlow is imported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from absl import flags

from neural_style.cli import report
from neural_style.cli.command import (
    Command,
    check_distinct,
    check_target,
    floats,
    network_path,
    require,
    start_tensorflow,
)
from neural_style.cli.inputs import read_regions, read_styles
from neural_style.cli.options import (
    SETTING_FLAGS,
    check_sizes,
    config_from_flags,
    define_color_and_region_flags,
    define_image_flags,
    define_input_flags,
    define_loss_flags,
)
from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    import numpy as np

    from neural_style.regions import Regions

__all__ = ["SETTINGS", "flag_values", "main"]

# The flags of neural-style this command takes (the same definitions), written to --json: what a run's objective
# depends on.
SETTINGS = (
    *("content_weight", "content_weight_blend", "style_weight", "style_layer_weight_exp", "style_blend_weights"),
    *("tv_weight", "pooling", "precision", "style_scales", "content_layers", "style_layers", "tile_size"),
    *("preserve_colors", "content_masks", "style_masks"),
)

_USAGE = """Usage: neural-style-score --network FILE --content IMAGE --styles STYLE[,...] [settings] IMAGE [IMAGE...]

Prints the loss terms of each IMAGE (a neural-style result, or any other image) under the settings of a neural-style
run: the same network, content and style targets and weights. Give the settings flags the run had (same names and
defaults as neural-style's). Each IMAGE is scored as saved (its 8-bit pixels) against the content resized to that
image's size, with the styles sized as neural-style sizes them for an output of that width (--style_scales). One line
per image: IMAGE<TAB>WIDTHxHEIGHT<TAB>content C<TAB>style S<TAB>tv T<TAB>total L.
"""

_WIDTH_HELP = (
    "Optional check: every IMAGE must be this many pixels wide (each is scored at its own size, as neural-style "
    "--width would have made it)."
)


def flag_values() -> flags.FlagValues:
    """The flags of ``neural-style-score``, on a fresh FlagValues: neural-style's inputs and loss settings (the same
    definitions), --width as a check, and --json / --overwrite."""
    fv = flags.FlagValues()
    define_input_flags(fv, __name__)
    define_loss_flags(fv, __name__, StyleConfig())
    define_image_flags(fv, __name__)
    define_color_and_region_flags(fv, __name__)
    fv["width"].help = _WIDTH_HELP
    flags.DEFINE_string(
        "json", None, "Also write the terms, sizes and settings to this JSON file (atomically).", flag_values=fv
    )
    flags.DEFINE_boolean("overwrite", False, "Replace the --json file if it exists.", flag_values=fv)
    return fv


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``neural-style-score``; the images to score are the positional arguments."""
    fv = flag_values()
    command = Command("neural-style-score", fv, _USAGE, __name__, setting_flags=SETTING_FLAGS)
    command.run(argv, lambda images: _score_files(fv, images), positional=True)


def _read_inputs(
    fv: flags.FlagValues, widths: set[int]
) -> dict[int, tuple[np.ndarray, list[np.ndarray], Regions | None]]:
    """{width: (content, styles, regions)} as read for an output that wide (as neural-style reads them for
    --width), the masks of --content_masks and --style_masks checked against them."""
    from neural_style.image_io import read_image

    read = {}
    for width in sorted(widths):
        content = read_image(fv.content, what="--content image", min_width=width)
        styles = read_styles(fv, width)
        read[width] = (content, styles, read_regions(fv, content, styles))
    return read


def _score_files(fv: flags.FlagValues, paths: Sequence[str]) -> None:
    if not paths:
        raise NeuralStyleError("give one or more images to score after the flags (see --help)")
    require(fv, "content", "the content image of the run")
    require(fv, "styles", "the style images of the run, comma-separated")
    check_sizes(fv)
    config = config_from_flags(fv)
    if fv.json:
        network = fv.network if fv["network"].present or os.path.exists(fv.network) else None
        inputs = [  # a file given twice is named by its last role: the content, rather than an IMAGE
            *((f"IMAGE {path}", path) for path in paths),
            ("--content image", fv.content),
            *((f"--styles image {path}", path) for path in fv.styles),
            ("--network file", network),
        ]
        check_distinct(inputs, [("--json", fv.json)])
        check_target(fv.json, overwrite=fv.overwrite, what="--json", example="scores.json")

    from neural_style.image_io import read_image

    images = [read_image(path, what="IMAGE") for path in paths]
    for path, image in zip(paths, images, strict=True):
        height, width = image.shape[:2]
        if min(height, width) < 2:
            raise NeuralStyleError(f"IMAGE {path} is {width}x{height} pixels; scoring needs at least 2x2")
        if fv.width is not None and width != fv.width:
            raise NeuralStyleError(
                f"IMAGE {path} is {width} pixels wide, not --width {fv.width}; leave --width out to score each "
                "image at its own size"
            )
    inputs_by_width = _read_inputs(fv, {image.shape[1] for image in images})

    from neural_style.matconvnet import default_cache_dir, load_vgg

    vgg = load_vgg(network_path(fv), cache_dir=default_cache_dir())
    start_tensorflow()  # every input is good: from here on TensorFlow is needed
    if config.precision == "float16":
        _check_float16()
    from neural_style.image_io import resize, resize_styles
    from neural_style.scoring import score_images

    scales = floats("style_scales", fv.style_scales)
    rows: list[dict[str, object]] = [{} for _ in paths]
    for size in dict.fromkeys(image.shape[:2] for image in images):  # each size once, in the order given
        height, width = size
        content, styles, regions = inputs_by_width[width]
        chosen = [i for i, image in enumerate(images) if image.shape[:2] == size]
        terms = score_images(
            vgg,
            resize(content, (height, width)),
            resize_styles(styles, scales, width),
            [images[i] for i in chosen],
            config,
            regions,
        )
        for k, i in enumerate(chosen):
            values = {key: float(terms[key][k]) for key in report.LOSS_KEYS}
            rows[i] = {"image": paths[i], "width": width, "height": height, **values}
    for row in rows:
        terms_text = "\t".join(f"{key} {row[key]:.6g}" for key in report.LOSS_KEYS)
        print(f"{row['image']}\t{row['width']}x{row['height']}\t{terms_text}")
    if fv.json:
        _write_json(fv, rows)
        print(f"Wrote {fv.json}")


def _check_float16() -> None:
    """float16 convolutions are for GPUs, as in neural-style (on a CPU TensorFlow falls back to slow kernels, with a
    warning); bfloat16 is allowed anywhere, since one pass needs no speed."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        raise NeuralStyleError("--precision float16 is for GPUs (none is visible); score with float32 or bfloat16")


def _write_json(fv: flags.FlagValues, rows: list[dict[str, object]]) -> None:
    """The scores, with the inputs and settings they were computed under, written atomically to --json."""
    from neural_style.atomic import atomic_write

    report = {
        "content": fv.content,
        "styles": list(fv.styles),
        "network": network_path(fv),
        "settings": {name: _setting(fv, name) for name in SETTINGS},
        "images": rows,
    }
    atomic_write(fv.json, (json.dumps(report, indent=2) + "\n").encode())


def _setting(fv: flags.FlagValues, name: str) -> object:
    """The value of a settings flag as JSON should hold it: number lists as numbers, layer lists as names."""
    value = fv[name].value
    if isinstance(value, list) and name not in ("content_layers", "style_layers", "content_masks", "style_masks"):
        numbers = floats(name, value)
        return None if numbers is None else list(numbers)
    return value
