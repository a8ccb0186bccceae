"""Blend sweeps of ``neural-style``: the candidates they list, the files they write, and the run (their flags are
defined with the others in :mod:`neural_style.cli.options`).

A sweep optimises many candidates (style blends x style weights) as batches through
:func:`neural_style.stylization.sweep`, writes each beside ``--output`` with its weights in the name and a captioned
contact sheet of them all. Ctrl-C or SIGTERM stops it at the end of the iteration with every image it has written
(the batch in progress as its best images so far) and the sheet of them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from absl import flags

from neural_style.cli import distribute, report
from neural_style.cli.command import RunHooks, check_distinct, check_writable, floats, interrupted_by
from neural_style.cli.saved_run import config_settings
from neural_style.cluster import TF_CONFIG_ENV, Cluster
from neural_style.config import Candidate, StyleConfig, even_blends, make_candidates
from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

    from neural_style.matconvnet import VggWeights
    from neural_style.regions import Regions
    from neural_style.stylization import Stylization

__all__ = [
    "SweepPlan",
    "candidate_label",
    "check_cluster",
    "check_split_tiles",
    "check_devices",
    "candidate_path",
    "outputs",
    "parse_blends",
    "plan",
    "run",
    "sheet_path",
    "strategy",
]

# The flags of a single run that a sweep has no use for.
_SINGLE_RUN_FLAGS = (
    *("checkpoint_output", "progress_write", "progress_plot", "scales", "resume", "restart", "checkpoint_sheet"),
    *("tensorboard_dir", "stage_iterations"),
)


def parse_blends(text: str, n_styles: int) -> list[tuple[float, ...]]:
    """Parses ``"1,0,0;0.5,0.5,0"``: blend vectors separated by ``;``, weights by ``,``."""
    if not text.strip():
        raise NeuralStyleError("--blends is empty; give blend vectors such as '1,0,0;0.5,0.5,0'")
    blends = []
    rows = text.split(";")
    if any(not row.strip() for row in rows):
        raise NeuralStyleError(
            f"--blends '{text}' has an empty entry; separate blend vectors by single semicolons, none at the end"
        )
    for row in rows:
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
    if fv.optimizer == "lbfgs" and fv.devices == "auto" and (cluster := distribute.cluster_of(fv)) is not None:
        # before the batch size: no batch size makes L-BFGS split across workers
        raise NeuralStyleError(
            f"{TF_CONFIG_ENV} lists {cluster.size} workers, but --optimizer lbfgs optimises one image on one device; "
            "sweep with adam"
        )
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


def check_cluster(fv: flags.FlagValues, sweep: SweepPlan | None, *, video: bool = False) -> Cluster | None:
    """The workers a sweep is split across (``TF_CONFIG`` with ``--devices auto``), or None for this process alone;
    checked before TensorFlow is imported.

    Raises:
        NeuralStyleError: a malformed ``TF_CONFIG``, a run with nothing to split between its workers (one image, a
            video, fewer candidates than workers, --tile_size), or a device list given with it (L-BFGS is refused
            by :func:`plan`, before its batch size).
    """
    cluster = distribute.cluster_of(fv) if fv.devices == "auto" else None
    if cluster is None:
        if fv.devices not in ("auto", "none") and distribute.cluster_of(fv) is not None:
            raise NeuralStyleError(
                f"--devices '{fv.devices}' names this machine's devices but {TF_CONFIG_ENV} lists several workers; "
                "leave --devices auto to sweep across them, or pass --devices none to run this process alone"
            )
        return None
    alone = f"unset {TF_CONFIG_ENV}, or pass --devices none to run this process alone"
    workers = f"{TF_CONFIG_ENV} lists {cluster.size} workers"
    if video or sweep is None:
        what = "a video" if video else "a single image"
        raise NeuralStyleError(
            f"{workers}, but {what} has nothing to split between them: sweep several candidates (--blend_sweep, "
            f"--blends, --sweep_style_weights) across them, or {alone}"
        )
    n = len(sweep.candidates)
    if n < cluster.size:
        raise NeuralStyleError(
            f"{workers}, but the sweep has {n} candidate{'s' if n > 1 else ''}, too few to split between them: give "
            f"at least one per worker, or {alone}"
        )
    if fv.tile_size is not None:
        raise NeuralStyleError(
            f"{workers}, but tiles (--tile_size) are evaluated on one device and do not combine with a split sweep: "
            f"leave out --tile_size, or {alone}"
        )
    if fv.batch_size is not None and fv.batch_size < cluster.size:
        raise NeuralStyleError(
            f"{workers}: each batch of candidates is split between them, so --batch_size {fv.batch_size} must be at "
            f"least {cluster.size}"
        )
    return cluster


def check_split_tiles(fv: flags.FlagValues, cluster: Cluster | None, tile_size: int | None) -> None:
    """Refuses, before the workers join, a split sweep whose image --max_memory puts in tiles (--tile_size itself is
    refused by :func:`check_cluster`): tiles are evaluated on one device."""
    if cluster is None or tile_size is None:
        return
    raise NeuralStyleError(
        f"{TF_CONFIG_ENV} lists {cluster.size} workers, but --max_memory {fv.max_memory} needs this image in "
        f"{tile_size} px tiles, and tiles are evaluated on one device and do not combine with a split sweep: raise "
        f"--max_memory, use a smaller --width, or unset {TF_CONFIG_ENV} (or pass --devices none) to run this "
        "process alone"
    )


def outputs(fv: flags.FlagValues, sweep: SweepPlan, inputs: Sequence[tuple[str, str | None]]) -> dict[str, str]:
    """Every file the sweep will write, checked before any work (none may be one of ``inputs``, the files the
    command reads, or another output): {label or "sheet": path}."""
    paths = {label: candidate_path(fv.output, label) for label in sweep.labels}
    paths["sheet"] = sheet_path(fv.output)
    check_distinct(inputs, [(f"sweep {label}", path) for label, path in paths.items()])
    for path in paths.values():
        check_writable(path, overwrite=fv.overwrite, what="sweep output")
    return paths


def check_devices(fv: flags.FlagValues) -> list[str]:
    """The devices --devices lists (neither ``auto`` nor ``none``), each one TensorFlow sees on this machine; for a
    sweep and a single image alike (TensorFlow started).

    Raises:
        NeuralStyleError: a device this machine lacks, or a name that is not a device, with the devices it has.
    """
    import tensorflow as tf

    devices = [d.strip() for d in fv.devices.split(",") if d.strip()]

    def key(name: str) -> tuple[str, int | None]:
        spec = tf.DeviceSpec.from_string(name)
        return (spec.device_type or "").upper(), spec.device_index

    known = {key(d.name): d.name for d in tf.config.list_logical_devices()}
    try:
        unknown = [d for d in devices if key(d) not in known]
    except ValueError:
        unknown = devices
    if unknown:
        raise NeuralStyleError(
            f"--devices '{fv.devices}' names {', '.join(unknown)}, which this machine does not have; it has "
            f"{', '.join(sorted(known.values()))} (or pass --devices auto)"
        )
    return devices


def strategy(fv: flags.FlagValues, cluster: Cluster | None = None) -> tf.distribute.Strategy | None:
    """The MirroredStrategy chosen by --devices, the MultiWorkerMirroredStrategy of ``cluster``, or None for the
    default device."""
    import tensorflow as tf

    if cluster is not None:
        print(f"Splitting candidates across the {cluster.size} workers of {TF_CONFIG_ENV} (this is {_role(cluster)})")
        return distribute.multiworker_strategy(cluster, fv.worker_timeout, "neural-style")
    if fv.devices == "none":
        return None
    if fv.devices == "auto":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if len(devices) < 2:
            return None
    else:
        devices = check_devices(fv)
        if len(devices) < 2:
            raise NeuralStyleError(f"--devices '{fv.devices}' names one device; name two or more to split a sweep")
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
    regions: Regions | None = None,
    cluster: Cluster | None = None,
    hooks: RunHooks | None = None,
) -> None:
    """Optimises the candidates, printing progress and their losses; writes each image and the sheet (``hooks``: a
    program driving the sweep in its own process, see :class:`neural_style.cli.command.RunHooks`).

    With a ``cluster`` (from :func:`check_cluster`) every worker runs this, each batch split across the replicas of
    all of them; every worker prints the losses and only the chief writes the files.

    On the first Ctrl-C / SIGTERM it stops at the end of the iteration, writes what it has (:func:`_stop`) and exits
    130; a second signal stops at once (KeyboardInterrupt, exit 130 without writing).
    """
    from neural_style import stylization
    from neural_style.image_io import resize_styles, write_image

    labels = sweep.labels
    chief = cluster is None or cluster.is_chief
    split = strategy(fv, cluster)  # first of TensorFlow's work: a multi-worker strategy configures the runtime
    hint = "the chief has written the images of the candidates finished so far; start every worker again to sweep"
    with distribute.lost_workers(cluster, fv.worker_timeout, hint):
        if cluster is not None:
            config = _agree(fv, split, cluster, config, (content, *styles, initial), vgg.md5, sweep)
    styles = resize_styles(styles, floats("style_scales", fv.style_scales), content.shape[1])
    size = fv.batch_size or len(sweep.candidates)
    chunks = -(-len(sweep.candidates) // size)
    print(
        f"Sweeping {len(sweep.candidates)} candidates in {chunks} batch(es) of up to {size}: "
        f"{content.shape[1]}x{content.shape[0]}, {len(styles)} style(s)"
    )
    results: list[np.ndarray] = []  # the final images of the finished candidates, in order
    clock = report.EtaClock(chunks * config.iterations, start)
    with interrupted_by(hooks) as interruption, distribute.lost_workers(cluster, fv.worker_timeout, hint):
        runs = stylization.sweep_runs(
            vgg,
            content,
            styles,
            config,
            sweep.candidates,
            batch_size=fv.batch_size,
            initial=initial,
            strategy=split,
            regions=regions,
        )
        for first, batch in runs:
            where = f"batch {first // size + 1}/{chunks}"
            for record in batch:
                done = first // size * config.iterations + record.iteration if record.iteration > 0 else None
                if clock.tick(done):
                    print(report.iteration_line(clock, f" ({where})"))
                if record.losses is not None and (record.iteration > 0 or config.print_iterations):
                    for i in range(len(record.losses["total"])):
                        terms = " ".join(f"{key} {float(record.losses[key][i]):g}" for key in report.LOSS_KEYS)
                        print(f"  [{labels[first + i]}] {terms}")
                if record.final:
                    assert record.images is not None and record.image_losses is not None
                    for i, image in enumerate(record.images):
                        if chief:
                            write_image(paths[labels[first + i]], image)
                        results.append(image)
                        saved = float(record.image_losses["total"][i])
                        what = "saved image" if chief else "final image (the chief writes it)"
                        print(f"  [{labels[first + i]}] {what}: total loss {saved:g} (0..255, rounded)")
                if hooks is not None:
                    so_far = first // size * config.iterations + record.iteration
                    total = chunks * config.iterations
                    hooks.record(so_far, total, record, batch, first=first, remaining=clock.remaining)
                if interruption and not record.final:
                    assert interruption.reason is not None
                    at = f"at iteration {record.iteration}/{config.iterations} of {where}"
                    progress = (batch, record.iteration, config.iterations)
                    _stop(interruption.reason, at, sweep, paths, results, progress, cluster)
            del batch  # one batch held at a time (see sweep_runs)
            if interruption and len(results) < len(sweep.candidates):
                assert interruption.reason is not None
                _stop(interruption.reason, f"after {where}", sweep, paths, results, None, cluster)
    if not chief:
        print(f"Done: {len(results)} candidates in {report.hms(time.time() - start)}; the chief writes their images")
        return
    write_image(paths["sheet"], report.contact_sheet(results, labels))
    print(f"Wrote {len(results)} images and {paths['sheet']} in {report.hms(time.time() - start)}")


def _role(cluster: Cluster) -> str:
    return "the chief, which writes the images" if cluster.is_chief else f"worker {cluster.rank}"


def _agree(
    fv: flags.FlagValues,
    split: tf.distribute.Strategy | None,
    cluster: Cluster,
    config: StyleConfig,
    images: Sequence[np.ndarray | None],
    network_md5: str,
    sweep: SweepPlan,
) -> StyleConfig:
    """The sweep's settings once every worker has checked that the others have the same (collectives): without a
    --seed, the chief's random seed, so that every candidate starts from the same noise wherever it runs."""
    import hashlib

    import numpy as np

    from neural_style.run_state import file_sha256

    assert split is not None
    if config.seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
        config = dataclasses.replace(config, seed=distribute.chief_value(split, seed))
    settings = config_settings(config)
    settings.update(
        {
            "the candidates": sweep.labels,
            "--batch_size": fv.batch_size,
            "the images (--content, --styles, --initial, --width)": [
                None if image is None else hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
                for image in images
            ],
            "--network": network_md5,
            "--style_scales": fv.style_scales,
            "the masks": [
                file_sha256(path) for name in ("content_masks", "style_masks") for path in fv[name].value or ()
            ],
        }
    )
    distribute.check_agreement(split, cluster, settings)
    return config


def _count(n: int, what: str) -> str:
    """``1 finished candidate``, ``2 finished candidates``."""
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _stop(
    why: str,
    at: str,
    sweep: SweepPlan,
    paths: dict[str, str],
    results: list[np.ndarray],
    progress: tuple[Stylization, int, int] | None,
    cluster: Cluster | None,
) -> NoReturn:
    """Ctrl-C / SIGTERM in a sweep: the finished candidates are written already; writes the best images so far of
    the batch in progress (``progress``: the batch, its iteration and iterations; None between batches) and the
    contact sheet of every image written, says so on one stderr line and exits 130. Candidates not started are left
    out. Of several workers the chief writes, and only the images it holds (gathering the current images of the
    batch would be a collective the other workers are not making)."""
    from neural_style.image_io import write_image

    chief = cluster is None or cluster.is_chief
    images = list(results)
    captions = list(sweep.labels[: len(results)])
    unfinished = 0
    if progress is not None:
        batch, iteration, iterations = progress
        current = batch.best_images()
        if current is None and cluster is None:
            current = batch.current_images()
        for i, image in enumerate(current if current is not None else ()):
            label = sweep.labels[len(results) + i]
            if chief:
                write_image(paths[label], image)
            images.append(image)
            captions.append(f"{label} (it {iteration}/{iterations})")
        unfinished = 0 if current is None else len(current)
    if not chief:
        print(f"neural-style: {why} {at}; the chief writes the images", file=sys.stderr)
        sys.exit(130)
    if images:
        write_image(paths["sheet"], report.contact_sheet(images, captions))
    finished = _count(len(results), "finished candidate")
    left = _count(len(sweep.candidates) - len(images), "candidate")
    wrote = f"{finished}, {unfinished} unfinished (best so far)" + (f" and {paths['sheet']}" if images else "")
    print(f"neural-style: {why} {at}: wrote {wrote}; {left} not started", file=sys.stderr)
    sys.exit(130)
