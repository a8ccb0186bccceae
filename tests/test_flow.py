"""Tests of optical flow, warping and the masks of where the flow is trusted (neural_style.flow).

Warps and masks of flows made by hand are worked out pixel by pixel; the flow OpenCV finds is checked on a texture
shifted by a known amount and on conftest's clip (a red square moving 2 px a frame across a still background).
Everything is skipped when OpenCV (the video extra) is absent; the clip also needs PyAV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage

pytest.importorskip("cv2")

from conftest import CLIP_HEIGHT as HEIGHT  # noqa: E402
from conftest import CLIP_WIDTH as WIDTH  # noqa: E402
from conftest import LEFT, SQUARE, STEP, TOP, square_frames, write_clip  # noqa: E402

from neural_style import flow  # noqa: E402
from neural_style.errors import NeuralStyleError  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("av")
    return write_clip(tmp_path_factory.mktemp("clip") / "square.mp4", square_frames())


def test_warp_by_a_hand_made_flow() -> None:
    """A flow of +1 in x samples one pixel to the right; at the right edge the edge pixel is repeated."""
    image = np.arange(12, dtype=np.float32).reshape(3, 4, 1).repeat(3, axis=2)
    shifted = flow.warp(image, np.tile(np.float32([1.0, 0.0]), (3, 4, 1)))
    assert shifted[..., 0].tolist() == [[1, 2, 3, 3], [5, 6, 7, 7], [9, 10, 11, 11]]
    half = flow.warp(image, np.tile(np.float32([0.0, 0.5]), (3, 4, 1)))  # bilinear between rows
    assert half[0, :, 0].tolist() == [2, 3, 4, 5]


def test_consistency_mask_of_hand_made_flows() -> None:
    """A 2-px square moving right by 2 on a still background: backward flow -2 on the square's new place, forward
    +2 on its old one. The background it uncovered (columns 2-3) leads back onto the square, whose forward flow
    does not come back: |w + b|^2 = 4 > 0.01 (4 + 0) + 0.5. Elsewhere the round trip is exact."""
    forward = np.zeros((6, 8, 2), np.float32)
    forward[2:4, 2:4, 0] = 2.0
    backward = np.zeros((6, 8, 2), np.float32)
    backward[2:4, 4:6, 0] = -2.0
    mask = flow.consistency_mask(forward, backward)
    assert mask[2:4, 2:4].sum() == 0  # uncovered
    assert mask[0].all() and mask[5].all() and mask[:, 0].all() and mask[:, 7].all()  # still, away from the motion
    assert mask[2:4, 4:6].sum() == 0  # and the flow's sharp edge is a motion boundary (|grad b|^2 = 1 > 0.01 4)


@pytest.fixture(scope="module")
def decoded(clip: Path) -> list[np.ndarray]:
    from neural_style.video import read_frames

    return list(read_frames(clip))


def test_flow_warps_each_frame_onto_the_next_and_masks_the_trailing_edge(decoded: list[np.ndarray]) -> None:
    for t in (0, 4, 9):
        before, after = decoded[t], decoded[t + 1]
        warped, mask = flow.temporal_guide(before, after, before)
        trusted = mask > 0
        error = np.abs(warped - after).mean(axis=-1)
        assert error[trusted].mean() < 0.5  # levels of 255
        assert error[trusted].max() <= flow.PHOTOMETRIC_TOLERANCE
        assert trusted[TOP + SQUARE + 4 :].mean() > 0.95  # the still background below the square
        left = LEFT + STEP * (t + 1)  # the square's left column in frame t + 1: it uncovered the two before it
        assert not trusted[TOP : TOP + SQUARE, left - STEP : left].any()
        assert trusted[TOP + 2 : TOP + SQUARE - 2, left + 3 : left + SQUARE - 3].all()  # the square's inside


def test_warp_by_a_whole_shift_is_indexing_with_the_edges_repeated() -> None:
    """A flow of (-2, +1) everywhere: pixel (y, x) takes the value at (y + 1, x - 2), the nearest edge pixel beyond
    the image; a flow of 0 returns the image itself, a 2-D image stays 2-D."""
    image = np.random.default_rng(0).uniform(0, 255, (5, 7, 3)).astype(np.float32)
    shifted = flow.warp(image, np.tile(np.float32([-2.0, 1.0]), (5, 7, 1)))
    rows = np.minimum(np.arange(5) + 1, 4)  # [1, 2, 3, 4, 4]
    columns = np.maximum(np.arange(7) - 2, 0)  # [0, 0, 0, 1, 2, 3, 4]
    np.testing.assert_allclose(shifted, image[rows][:, columns], atol=1e-3)
    np.testing.assert_allclose(flow.warp(image, np.zeros((5, 7, 2), np.float32)), image, atol=1e-3)
    gray = flow.warp(image[..., 0], np.tile(np.float32([-2.0, 1.0]), (5, 7, 1)))
    assert gray.shape == (5, 7) and gray.dtype == np.float32
    np.testing.assert_allclose(gray, image[rows][:, columns, 0], atol=1e-3)


def test_consistency_mask_trusts_a_uniform_motion_everywhere() -> None:
    """Forward (+1, 0) and backward (-1, 0) everywhere: every round trip is exact and the flow has no edge."""
    forward = np.tile(np.float32([1.0, 0.0]), (6, 8, 1))
    mask = flow.consistency_mask(forward, -forward)
    assert mask.dtype == np.float32 and mask.tolist() == np.ones((6, 8)).tolist()
    half = flow.consistency_mask(forward, np.tile(np.float32([-0.5, 0.0]), (6, 8, 1)))
    # |w + b|^2 = 0.25 <= 0.01 (1 + 0.25) + 0.5 = 0.5125: within the tolerance; 2 px off: 1 > 0.01 (1 + 4) + 0.5
    assert half.all()
    assert not flow.consistency_mask(forward, np.tile(np.float32([1.0, 0.0]), (6, 8, 1))).any()


def test_photometric_mask_by_hand() -> None:
    """No motion: the mean absolute difference over R, G and B against the tolerance of 12 levels. Pixel (0, 0)
    differs by (12, 12, 12): mean 12, kept; (0, 1) by (36, 0, 1): mean 12.33, dropped; (1, 0) by (0, 0, 0)."""
    previous = np.full((2, 2, 3), 100.0, np.float32)
    content = previous.copy()
    content[0, 0] += 12.0
    content[0, 1] += (36.0, 0.0, 1.0)
    content[1, 1] -= 13.0
    still = np.zeros((2, 2, 2), np.float32)
    assert flow.photometric_mask(previous, content, still).tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert flow.photometric_mask(previous, content, still, tolerance=13.0).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert flow.photometric_mask(previous, content, still, tolerance=0.0).tolist() == [[0.0, 0.0], [1.0, 0.0]]


def texture(height: int, width: int) -> np.ndarray:
    """A smooth random RGB texture spanning 0..255: detail at every place for the flow to follow."""
    noise = np.random.default_rng(1).uniform(0, 255, (height, width, 3))
    smooth = scipy.ndimage.gaussian_filter(noise, (1.5, 1.5, 0))
    return ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.float32)


def test_optical_flow_of_a_known_shift() -> None:
    """The target is the source moved 3 px right (target[y, x + 3] = source[y, x]): the flow from source to target
    is (3, 0) within 0.1 px away from the borders, and warping the target by it gives the source back."""
    wide = texture(48, 59)
    source, target = wide[:, 3:], wide[:, :56]
    found = flow.optical_flow(source, target)
    assert found.shape == (48, 56, 2) and found.dtype == np.float32
    inside = found[8:-8, 8:-8]
    assert np.abs(inside[..., 0] - 3.0).max() < 0.1 and np.abs(inside[..., 1]).max() < 0.1
    assert np.abs(flow.warp(target, found) - source)[8:-8, 8:-8].mean() < 1.0  # levels of 255


def test_a_still_frame_is_trusted_everywhere_and_passes_the_previous_result_on() -> None:
    frame = texture(24, 32)
    result = np.random.default_rng(2).uniform(0, 255, (24, 32, 3)).astype(np.float32)
    warped, mask = flow.temporal_guide(frame, frame, result)
    assert mask.tolist() == np.ones((24, 32)).tolist()
    assert np.abs(warped - result).max() < 0.01


def test_frames_of_two_sizes_have_no_flow() -> None:
    with pytest.raises(NeuralStyleError) as info:
        flow.optical_flow(np.zeros((4, 6, 3)), np.zeros((4, 5, 3)))
    assert str(info.value) == "frames of shapes (4, 6, 3) and (4, 5, 3); the flow needs one size"


# ------------------------------------------------------------------------------------------------ long-term


def test_long_term_masks_by_hand() -> None:
    """c_long_j = max(c_j - sum of the nearer masks, 0): each pixel counts for the nearest frame that shows it."""
    nearest, second, third = (np.float32(m) for m in ([1, 0, 0, 1], [1, 1, 0, 0], [1, 1, 1, 0]))
    masks = flow.long_term_masks([nearest, second, third])
    assert [m.tolist() for m in masks] == [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]]
    soft = flow.long_term_masks([np.float32([0.5, 0.0]), np.float32([0.75, 0.25]), np.float32([1.0, 1.0])])
    assert [m.tolist() for m in soft] == [[0.5, 0.0], [0.25, 0.25], [0.0, 0.75]]  # 1 - (0.5 + 0.75) < 0: 0


def test_long_term_guide_is_the_short_term_guide_then_the_farther_frames(decoded: list[np.ndarray]) -> None:
    """The nearest entry is temporal_guide's; an offset before the clip's start gets zeros."""
    warped, masks = flow.long_term_guide(decoded[3], [(decoded[2], decoded[2]), (decoded[1], decoded[1]), None])
    short_warped, short_mask = flow.temporal_guide(decoded[2], decoded[3], decoded[2])
    assert warped.shape == (3, HEIGHT, WIDTH, 3) and masks.shape == (3, HEIGHT, WIDTH)
    assert np.array_equal(warped[0], short_warped) and np.array_equal(masks[0], short_mask)
    assert not (masks[0] * masks[1]).any() and not warped[2].any() and not masks[2].any()
    _, far = flow.temporal_guide(decoded[1], decoded[3], decoded[1])
    assert np.array_equal(masks[1], np.maximum(far - short_mask, 0))
