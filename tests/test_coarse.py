"""Tests of coarse-to-fine (neural_style.coarse): stage widths, the iterations of each stage, and a two-stage run
on conftest's tiny network whose second stage starts from the first's result."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import TinyRun, record_image, record_step_loss, tiny_config

from neural_style.coarse import MIN_STAGE_WIDTH, check_widths, coarse_to_fine, split_iterations, stage_widths
from neural_style.errors import NeuralStyleError
from neural_style.image_io import resize, style_size
from neural_style.stylization import build_objective
from neural_style.vgg import preprocess


def test_stage_widths() -> None:
    """Widths halve from the output width; a stage narrower than 32 px is refused."""
    assert MIN_STAGE_WIDTH == 32
    assert stage_widths(256, 1) == [256]
    assert stage_widths(256, 3) == [64, 128, 256]
    assert stage_widths(300, 2) == [150, 300]
    assert stage_widths(250, 3) == [62, 125, 250]  # 62.5 rounds to even
    assert stage_widths(128, 3) == [32, 64, 128]
    with pytest.raises(NeuralStyleError, match="^scales is 0"):
        stage_widths(256, 0)
    with pytest.raises(NeuralStyleError, match="first stage 16 px wide"):
        stage_widths(128, 4)


def test_split_iterations() -> None:
    """Equal shares; the remainder goes to the last (full-size) stage."""
    assert split_iterations(10, 3) == [3, 3, 4]
    assert split_iterations(9, 3) == [3, 3, 3]
    assert split_iterations(5, 2) == [2, 3]
    assert split_iterations(7, 1) == [7]
    assert split_iterations(3, 3) == [1, 1, 1]
    with pytest.raises(NeuralStyleError, match="^iterations 2 cannot be shared by 3 scales"):
        split_iterations(2, 3)


@pytest.mark.parametrize("widths", [[64, 32, 128], [64, 64, 128], [16, 128], [32, 64], [32, 64, 256]])
def test_check_widths_rejects(widths: list[int]) -> None:
    with pytest.raises(NeuralStyleError, match="must increase from at least 32 px to the output width 128"):
        check_widths(widths, 128)


def test_check_widths_accepts() -> None:
    """Any increasing widths from 32 px to the output's, among them every plan of stage_widths."""
    check_widths([32, 100, 128], 128)
    check_widths([128], 128)
    for scales, widths in ((1, [128]), (2, [64, 128]), (3, [32, 64, 128])):
        assert stage_widths(128, scales) == widths
        check_widths(widths, 128)


@pytest.mark.slow
def test_coarse_to_fine_stages(tiny_run: TinyRun) -> None:
    """Stages run in order at their sizes, each from the previous result upsampled; the result has the content's size.

    The content is 64x48 with stages 32 and 64 px wide, so stage 0 works on 32x24 images. The stopping rule
    (``stop_at_loss`` reached at once) fires only in the last stage.
    """
    content = resize(tiny_run.content, (48, 64))
    config = tiny_config(stop_at_loss=1e30)
    records = list(
        coarse_to_fine(tiny_run.weights, content, [tiny_run.style], config, widths=[32, 64], iterations=[3, 4])
    )
    assert [(stage, r.iteration) for stage, r in records] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]
    assert [r.final for _, r in records] == [False, False, False, True, False, True]
    assert [r.iterations for _, r in records] == [3, 3, 3, 3, 4, 4]
    coarse, fine = record_image(records[3][1]), record_image(records[5][1])
    assert coarse.shape == (24, 32, 3)
    assert fine.shape == (48, 64, 3) and np.isfinite(fine).all()

    # Stage 1's first step starts from stage 0's result resized to 64x48, without noise; the style image is
    # resized to the stage width as a single run at 64 px would.
    style = resize(tiny_run.style, style_size(tiny_run.style.shape, 1.0, 64))
    objective = build_objective(tiny_run.weights, content, [style], config)
    start = preprocess(resize(coarse, (48, 64)), tiny_run.weights.mean_pixel)[None].astype(np.float32)
    np.testing.assert_allclose(
        record_step_loss(records[5][1]), objective(tf.constant(start))["total"].numpy(), rtol=1e-4
    )


def test_the_stages_are_one_run_traced_once(tiny_run: TinyRun) -> None:
    """Three stages restart one run at each size: one trace of its step serves them all, and each stage's result
    is that of a run built for that stage alone, from the same start (to round-off)."""
    from neural_style.coarse import stage_runs
    from neural_style.stylization import Stylization

    content = resize(tiny_run.content, (48, 64))
    config = tiny_config(optimizer="lbfgs")
    runs, results, steps = [], [], set()
    for stage, run in stage_runs(
        tiny_run.weights, content, [tiny_run.style], config, widths=[32, 48, 64], iterations=[3, 2, 2]
    ):
        start = None if stage == 0 else resize(results[-1], run._content.shape[:2])
        records = list(run)
        runs.append(run)
        steps.add(run._engine._iterate)
        results.append(record_image(records[-1]))
        # The same stage as a run of its own: its content and style at the stage width, started where it was.
        style = resize(tiny_run.style, style_size(tiny_run.style.shape, 1.0, run._content.shape[1]))
        alone = Stylization(
            tiny_run.weights,
            run._content,
            [style],
            run.config,
            initial=start,
        )
        np.testing.assert_allclose(record_image(list(alone)[-1]), results[-1], atol=1.0)
    assert len({id(run) for run in runs}) == 1 and len(steps) == 1
    assert next(iter(steps)).experimental_get_tracing_count() == 1
    assert [r.shape for r in results] == [(24, 32, 3), (36, 48, 3), (48, 64, 3)]


def test_stages_with_regions_are_runs_of_their_own(tiny_run: TinyRun) -> None:
    """Regions are resized with each stage and held as constants: such a run cannot change size, so each stage
    builds its own."""
    from neural_style.coarse import stage_runs
    from neural_style.regions import Regions

    content = resize(tiny_run.content, (48, 64))
    regions = Regions(content_masks=(np.ones((48, 64), np.float32),))
    runs = []
    for _, run in stage_runs(
        tiny_run.weights,
        content,
        [tiny_run.style],
        tiny_config(iterations=1),
        widths=[32, 64],
        iterations=[1, 1],
        regions=regions,
    ):
        assert not run.resizable
        list(run)
        runs.append(run)
    assert runs[0] is not runs[1]


def test_a_kept_run_is_restarted_for_the_next_run_of_the_same_settings(tiny_run: TinyRun) -> None:
    """``reuse``: a finished run serves the next coarse-to-fine run of the same network and settings (other images,
    sizes, iterations, seed) without tracing again, with the result of a run built afresh; other settings, or
    another network object, get a run of their own."""
    import dataclasses

    from neural_style.coarse import stage_runs

    def result(runs) -> tuple[list, np.ndarray]:
        held, image = [], None
        for _, run in runs:
            held.append(run)
            image = record_image(list(run)[-1])
        return held, image

    config = tiny_config(optimizer="lbfgs", iterations=2)
    first, _ = result(
        stage_runs(tiny_run.weights, tiny_run.content, [tiny_run.style], config, widths=[24], iterations=[2])
    )
    kept = first[0]
    step = kept._engine._iterate
    content = resize(tiny_run.content, (30, 40))
    again = dataclasses.replace(config, seed=3)
    options = {"widths": [32, 40], "iterations": [2, 3]}
    reused, image = result(stage_runs(tiny_run.weights, content, [tiny_run.style[::-1]], again, reuse=kept, **options))
    assert all(run is kept for run in reused) and step.experimental_get_tracing_count() == 1
    _, fresh = result(stage_runs(tiny_run.weights, content, [tiny_run.style[::-1]], again, **options))
    np.testing.assert_allclose(image, fresh, atol=1.0)
    other = dataclasses.replace(again, tv_weight=2.0)
    assert all(
        run is not kept
        for run in result(stage_runs(tiny_run.weights, content, [tiny_run.style], other, reuse=kept, **options))[0]
    )
    copy = dataclasses.replace(tiny_run.weights)
    assert all(
        run is not kept for run in result(stage_runs(copy, content, [tiny_run.style], again, reuse=kept, **options))[0]
    )
