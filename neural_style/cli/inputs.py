"""What a ``neural-style`` run reads, checked: the images at the output size, the masks and the network.

:meth:`Inputs.read` reads every input, plans the run (:mod:`neural_style.cli.plan`), and only then starts TensorFlow
and checks that the hardware runs the asked precision fast; nothing is resized before the memory guard has seen the
size.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from absl import flags

from neural_style.cli.command import floats, network_path, start_tensorflow
from neural_style.cli.plan import Stages, check_memory
from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    import numpy as np

    from neural_style.matconvnet import VggWeights
    from neural_style.regions import Regions

__all__ = ["Inputs", "check_precision", "input_files", "read_regions", "read_styles"]


def input_files(fv: flags.FlagValues) -> list[tuple[str, str | None]]:
    """(how to name it, path) of every file neural-style reads, for :func:`~neural_style.cli.command.check_distinct`."""
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


def read_styles(fv: flags.FlagValues, width: int) -> list[np.ndarray]:
    """The --styles images as read for an output ``width`` pixels wide: each at least as wide as its
    --style_scales share of it (so that it is only ever shrunk)."""
    from neural_style.image_io import read_image

    scales = floats("style_scales", fv.style_scales) or (1.0,) * len(fv.styles)
    return [
        read_image(path, what="--styles image", min_width=math.ceil(scale * width))
        for path, scale in zip(fv.styles, scales, strict=True)
    ]


def check_precision(precision: str) -> None:
    """Refuses a 16-bit precision the hardware has no fast support for, instead of running slower than float32
    (after TensorFlow has started); float32 always passes."""
    if precision == "float32":
        return
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
        styles = read_styles(fv, width)
        initial = read_image(fv.initial, what="--initial image", min_width=fv.width) if fv.initial else None
        regions = read_regions(fv, content, styles)
        stages = Stages.plan(fv, width, config.iterations)
        vgg = load_vgg(network_path(fv), cache_dir=default_cache_dir())
        config.validate(len(styles), vgg.layer_names)
        tile_size = check_memory(fv, vgg, height, width, batch, config)
        start_tensorflow()  # every input is good: from here on TensorFlow is needed
        if config.precision != "float32":
            check_precision(config.precision)
        content = resize(content, (height, width))
        initial = None if initial is None else resize(initial, (height, width))
        return cls(content, styles, initial, vgg, regions, tile_size), stages
