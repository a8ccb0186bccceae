"""Blend sweeps of ``neural-style``: their flags, the candidates they list, the files they write, and the run.

A sweep optimises many candidates (style blends x style weights) as batches through
:func:`neural_style.stylization.sweep`, writes each beside ``--output`` with its weights in the name and a captioned
contact sheet of them all.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from absl import flags

from neural_style.cli import report
from neural_style.cli.command import floats
from neural_style.config import Candidate, StyleConfig, even_blends, make_candidates
from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

    from neural_style.matconvnet import VggWeights

__all__ = [
    "SweepPlan",
    "candidate_label",
    "candidate_path",
    "define_flags",
    "outputs",
    "parse_blends",
    "plan",
    "run",
    "sheet_path",
    "strategy",
]

# The flags of a single run that a sweep has no use for.
_SINGLE_RUN_FLAGS = ("checkpoint_output", "progress_write", "progress_plot", "scales", "resume", "checkpoint_sheet")


def define_flags(fv: flags.FlagValues, module: str) -> None:
    """Defines the sweep flags of ``neural-style`` on ``fv``, as flags of the command module ``module`` (so that
    ``--help`` lists them among the others, in one alphabetical list)."""
    flags.DEFINE_integer(
        "blend_sweep",
        None,
        "Sweep: K blends of two styles, evenly spaced from pure first to pure second style.",
        flag_values=fv,
        module_name=module,
    )
    flags.DEFINE_string(
        "blends",
        None,
        "Sweep: blend vectors separated by ';', e.g. '1,0,0;0.5,0.5,0;0,0,1'.",
        flag_values=fv,
        module_name=module,
    )
    flags.DEFINE_list(
        "sweep_style_weights",
        None,
        "Sweep: style weights, e.g. 1e2,5e2,1e3 (combined with any blends).",
        flag_values=fv,
        module_name=module,
    )
    flags.DEFINE_integer(
        "batch_size",
        None,
        "Sweep: most candidates optimised at once (default all); more run in turn.",
        flag_values=fv,
        module_name=module,
    )
    flags.DEFINE_string(
        "devices",
        "auto",
        "Sweep: split candidates across devices with tf.distribute.MirroredStrategy. 'auto': every GPU when there "
        "are two or more, 'none': the default device only, or a list such as '/gpu:0,/gpu:1'.",
        flag_values=fv,
        module_name=module,
    )


def parse_blends(text: str, n_styles: int) -> list[tuple[float, ...]]:
    """Parses ``"1,0,0;0.5,0.5,0"``: blend vectors separated by ``;``, weights by ``,``."""
    blends = []
    for row in text.split(";"):
        if not row.strip():
            continue
        try:
            values = tuple(float(v) for v in row.split(","))
        except ValueError:
            raise NeuralStyleError(f"--blends has '{row}', which is not comma-separated numbers") from None
        if len(values) != n_styles:
            raise NeuralStyleError(f"--blends has '{row}' with {len(values)} weights for {n_styles} styles")
        if not all(math.isfinite(v) for v in values):
            raise NeuralStyleError(f"--blends has '{row}'; give finite numbers")
        if not all(math.isfinite(v) and v >= 0 for v in values) or not sum(values) > 0:
            raise NeuralStyleError(f"--blends has '{row}'; weights must be non-negative with a positive sum")
        blends.append(values)
    if not blends:
        raise NeuralStyleError("--blends is empty; give blend vectors such as '1,0,0;0.5,0.5,0'")
    return blends


def candidate_label(candidate: Candidate, *, blend: bool = True, style_weight: bool = False) -> str:
    """A short name for a candidate, e.g. ``0.25-0.75``, ``sw500`` or ``0.25-0.75_sw500``."""
    parts = []
    if blend:
        parts.append("-".join(f"{w:.3g}" for w in candidate.blend))
    if style_weight:
        parts.append(f"sw{candidate.style_weight:g}")
    return "_".join(parts)


def candidate_path(output: str, label: str) -> str:
    """``out.png`` and ``0.25-0.75`` -> ``out_0.25-0.75.png``."""
    stem, ext = os.path.splitext(output)
    return f"{stem}_{label}{ext}"


def sheet_path(output: str) -> str:
    """``out.png`` -> ``out_sheet.png``."""
    return candidate_path(output, "sheet")


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """The candidates of a sweep, in order, and their labels (the names of their files)."""

    candidates: list[Candidate]
    labels: list[str]


def _blends(fv: flags.FlagValues) -> list[tuple[float, ...]] | None:
    """The blends of --blend_sweep or --blends, or None when neither is given."""
    if fv.blend_sweep is not None and fv.blends is not None:
        raise NeuralStyleError("--blend_sweep and --blends both list blends; give one of them")
    if fv.blend_sweep is not None:
        if len(fv.styles) != 2:
            raise NeuralStyleError(f"--blend_sweep blends two styles but --styles has {len(fv.styles)}; use --blends")
        return list(even_blends(fv.blend_sweep))
    if fv.blends is not None:
        return parse_blends(fv.blends, len(fv.styles))
    return None


def plan(fv: flags.FlagValues) -> SweepPlan | None:
    """The candidates and labels of the sweep the flags ask for, or None for a single image; every flag checked."""
    if fv.blend_sweep is None and fv.blends is None and fv.sweep_style_weights is None:
        if fv.batch_size is not None:
            raise NeuralStyleError("--batch_size applies to sweeps (--blend_sweep, --blends, --sweep_style_weights)")
        return None
    if fv.batch_size is not None and fv.batch_size < 1:
        raise NeuralStyleError(f"--batch_size is {fv.batch_size}; it must be at least 1")
    for name in _SINGLE_RUN_FLAGS:
        if fv[name].value:
            raise NeuralStyleError(f"--{name} is not available in a sweep; run the chosen candidate alone for it")
    if fv.optimizer == "lbfgs" and fv.batch_size != 1:
        raise NeuralStyleError("--optimizer lbfgs optimises one image at a time: pass --batch_size 1 in a sweep")
    blends = _blends(fv)
    if blends is not None and fv.style_blend_weights is not None:
        raise NeuralStyleError("--style_blend_weights conflicts with the blends of the sweep; leave it out")
    weights = floats("sweep_style_weights", fv.sweep_style_weights)
    if weights is not None and not all(math.isfinite(w) and w >= 0 for w in weights):
        raise NeuralStyleError("--sweep_style_weights must be finite numbers >= 0")
    config = StyleConfig(style_blend_weights=floats("style_blend_weights", fv.style_blend_weights))
    candidates = make_candidates(config, len(fv.styles), blends, weights)
    labels = [candidate_label(c, blend=blends is not None, style_weight=weights is not None) for c in candidates]
    if len(set(labels)) != len(labels):
        raise NeuralStyleError(
            "--blends/--blend_sweep/--sweep_style_weights list the same weights twice; each candidate needs its own"
        )
    return SweepPlan(candidates, labels)


def outputs(fv: flags.FlagValues, sweep: SweepPlan) -> dict[str, str]:
    """Every file the sweep will write, checked before any work: {label or "sheet": path}."""
    from neural_style.image_io import check_writable

    paths = {label: candidate_path(fv.output, label) for label in sweep.labels}
    paths["sheet"] = sheet_path(fv.output)
    for path in paths.values():
        check_writable(path, overwrite=fv.overwrite, what="sweep output")
    return paths


def strategy(fv: flags.FlagValues) -> tf.distribute.Strategy | None:
    """The MirroredStrategy chosen by --devices, or None for the default device."""
    import tensorflow as tf

    if fv.devices == "none":
        return None
    if fv.devices == "auto":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if len(devices) < 2:
            return None
    else:
        devices = [d.strip() for d in fv.devices.split(",") if d.strip()]

        def key(name: str) -> tuple[str, int | None]:
            spec = tf.DeviceSpec.from_string(name)
            return (spec.device_type or "").upper(), spec.device_index

        known = {key(d.name): d.name for d in tf.config.list_logical_devices()}
        try:
            unknown = [d for d in devices if key(d) not in known]
        except ValueError:
            unknown = devices
        if unknown or len(devices) < 2:
            raise NeuralStyleError(
                f"--devices '{fv.devices}' must name two or more devices TensorFlow sees: "
                f"{', '.join(sorted(known.values()))}"
            )
    print(f"Splitting candidates across {', '.join(devices)}")
    return tf.distribute.MirroredStrategy(devices)


def run(
    fv: flags.FlagValues,
    vgg: VggWeights,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    initial: np.ndarray | None,
    config: StyleConfig,
    sweep: SweepPlan,
    paths: dict[str, str],
    start: float,
) -> None:
    """Optimises the candidates, printing progress and their losses; writes each image and the sheet."""
    from neural_style import stylization
    from neural_style.image_io import resize_styles, write_image

    labels = sweep.labels
    styles = resize_styles(styles, floats("style_scales", fv.style_scales), content.shape[1])
    size = fv.batch_size or len(sweep.candidates)
    chunks = -(-len(sweep.candidates) // size)
    print(
        f"Sweeping {len(sweep.candidates)} candidates in {chunks} batch(es) of up to {size}: "
        f"{content.shape[1]}x{content.shape[0]}, {len(styles)} style(s)"
    )
    results: list[np.ndarray] = []
    clock = report.EtaClock(chunks * config.iterations, start)
    records = stylization.sweep(
        vgg, content, styles, config, sweep.candidates, batch_size=fv.batch_size, initial=initial, strategy=strategy(fv)
    )
    for first, record in records:
        done = first // size * config.iterations + record.iteration if record.iteration > 0 else None
        line = clock.tick(done, f" (batch {first // size + 1}/{chunks})")
        if line is not None:
            print(line)
        if record.losses is not None:
            for i in range(len(record.losses["total"])):
                terms = " ".join(f"{key} {float(record.losses[key][i]):g}" for key in report.LOSS_KEYS)
                print(f"  [{labels[first + i]}] {terms}")
        if record.final:
            assert record.images is not None
            for i, image in enumerate(record.images):
                write_image(paths[labels[first + i]], image)
                results.append(image)
    write_image(paths["sheet"], report.contact_sheet(results, labels))
    print(f"Wrote {len(results)} images and {paths['sheet']} in {report.hms(time.time() - start)}")
