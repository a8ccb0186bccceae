"""Tests of the memory estimate (neural_style.memory): floats per pixel, bytes and the largest width that fits,
by hand on conftest's tiny network, and the memory available from /proc/meminfo and cgroup limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_style import memory
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights

# Per input pixel, the floats of conv, relu and pool outputs through relu5_1 for channels (4, 6, 8, 8, 8):
#   block 1 at full size:  4 x (conv, relu) x 2 = 16, pool1 (4 channels / 4)       = 1       -> 17
#   block 2 at 1/4:        6/4 x 4 = 6,              pool2 (6 / 16)                 = 0.375   -> 6.375
#   block 3 at 1/16:       8/16 x 8 = 4,             pool3 (8 / 64)                 = 0.125   -> 4.125
#   block 4 at 1/64:       8/64 x 8 = 1,             pool4 (8 / 256)                = 0.03125 -> 1.03125
#   block 5 at 1/256:      conv5_1, relu5_1: 8/256 x 2                                        = 0.0625
TINY_FLOATS_PER_PIXEL = 17 + 6.375 + 4.125 + 1.03125 + 0.0625  # 28.59375
# Kernel floats: 3x3 x (3*4 + 4*4 + 4*6 + 6*6 + 6*8 + 3*8*8 + 4*8*8 + 4*8*8) = 9 x 840 = 7560, 4 bytes each.
TINY_WEIGHT_BYTES = 7560 * 4
RUNTIME_BYTES = 700 * 2**20


@pytest.fixture(scope="module")
def tiny_weights(small_problem) -> VggWeights:
    return small_problem[0]


def test_activation_floats_per_pixel_by_hand(tiny_weights: VggWeights) -> None:
    assert memory.activation_floats_per_pixel(tiny_weights, "relu5_1") == TINY_FLOATS_PER_PIXEL
    assert memory.activation_floats_per_pixel(tiny_weights, "relu1_1") == 4 + 4
    assert memory.activation_floats_per_pixel(tiny_weights, "pool1") == 17
    assert memory.activation_floats_per_pixel(tiny_weights, "relu2_1") == 17 + 1.5 + 1.5


def test_estimate_bytes_by_hand(tiny_weights: VggWeights) -> None:
    """runtime + kernels + floats/pixel x pixels x batch x 4 bytes x 1.25 (backward pass)."""
    assert memory.estimate_bytes(tiny_weights, 0, 0) == RUNTIME_BYTES + TINY_WEIGHT_BYTES
    # 28.59375 x 100 x 200 x 4 x 1.25 = 2,859,375 exactly
    assert memory.estimate_bytes(tiny_weights, 100, 200) == RUNTIME_BYTES + TINY_WEIGHT_BYTES + 2_859_375
    assert memory.estimate_bytes(tiny_weights, 100, 200, batch=3) == RUNTIME_BYTES + TINY_WEIGHT_BYTES + 8_578_125
    assert memory.estimate_bytes(tiny_weights, 100, 200, deepest="relu1_1") == (
        RUNTIME_BYTES + TINY_WEIGHT_BYTES + 8 * 100 * 200 * 5
    )


def test_largest_width_by_hand(tiny_weights: VggWeights) -> None:
    """(available - fixed) / (bytes per pixel x aspect), square-rooted and floored."""
    fixed = RUNTIME_BYTES + TINY_WEIGHT_BYTES
    assert memory.largest_width(tiny_weights, 1.0, fixed) == 0
    assert memory.largest_width(tiny_weights, 1.0, fixed - 1) == 0
    # 142.96875 bytes per pixel (28.59375 x 5); 100 x 100 pixels need 1,429,687.5 bytes
    assert memory.largest_width(tiny_weights, 1.0, fixed + 1_429_688) == 100
    assert memory.largest_width(tiny_weights, 0.5, fixed + 1_429_688 // 2 + 1) == 100
    assert memory.largest_width(tiny_weights, 1.0, fixed + 1_429_688, batch=4) == 50


def test_largest_width_fits(tiny_weights: VggWeights) -> None:
    available = RUNTIME_BYTES + TINY_WEIGHT_BYTES + 10**9
    width = memory.largest_width(tiny_weights, 1.0, available)
    assert memory.estimate_bytes(tiny_weights, width, width) <= available
    assert memory.estimate_bytes(tiny_weights, width + 1, width + 1) > available


def test_available_bytes_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684096 kB\nMemFree:         1000000 kB\nMemAvailable:    2048000 kB\n")
    assert memory.available_bytes(str(meminfo), cgroup_files=[str(tmp_path / "none")]) == 2048000 * 1024


def test_available_bytes_capped_by_cgroup(tmp_path: Path) -> None:
    """A cgroup v2 limit minus the cgroup's usage caps MemAvailable."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable:    8388608 kB\n")  # 8 GiB
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("4294967296\n")  # 4 GiB
    (cgroup / "memory.current").write_text("1073741824\n")  # 1 GiB used
    files = [str(cgroup / "memory.max")]
    assert memory.available_bytes(str(meminfo), cgroup_files=files) == 3 * 2**30
    (cgroup / "memory.max").write_text("max\n")  # no limit
    assert memory.available_bytes(str(meminfo), cgroup_files=files) == 8 * 2**30
    (cgroup / "memory.max").write_text("1073741824\n")
    (cgroup / "memory.current").unlink()  # usage unknown: counted as 0
    assert memory.available_bytes(str(meminfo), cgroup_files=files) == 2**30


def test_available_bytes_cgroup_v1_unlimited_and_unknown(tmp_path: Path) -> None:
    cgroup = tmp_path / "memory"
    cgroup.mkdir()
    (cgroup / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1 "no limit"
    (cgroup / "memory.usage_in_bytes").write_text("5\n")
    files = [str(cgroup / "memory.limit_in_bytes")]
    assert memory.available_bytes(str(tmp_path / "no-meminfo"), cgroup_files=files) is None
    (cgroup / "memory.limit_in_bytes").write_text("1005\n")
    assert memory.available_bytes(str(tmp_path / "no-meminfo"), cgroup_files=files) == 1000
    bad = tmp_path / "bad-meminfo"
    bad.write_text("MemAvailable: lots kB\n")
    assert memory.available_bytes(str(bad), cgroup_files=[str(tmp_path / "none")]) is None


# ------------------------------------------------------------------------------------------------ tiled runs


def test_tile_geometry_by_hand(tiny_weights: VggWeights) -> None:
    """Spoiled positions from a cut: +1 per 3x3 conv, ceil(c / 2) per pooling; times the stride; aligned."""
    specs = memory.layer_specs(tiny_weights)
    strides, halo, align = memory.tile_geometry(specs, "relu5_1")
    assert (halo, align) == (80, 16)  # 2, 1, 3, 2, 6, 3, 7, 4, 5 at stride 16
    assert strides["relu1_1"] == 1 and strides["relu2_1"] == 2 and strides["relu4_2"] == 8
    assert memory.tile_geometry(specs, "relu4_2")[1:] == (40, 8)
    assert memory.tile_geometry(specs, "relu1_1")[1:] == (1, 1)
    assert memory.tile_geometry(specs, "pool1")[1:] == (2, 2)  # 2 spoiled -> 1 at stride 2
    assert memory.round_tile(100, 16) == 96 and memory.round_tile(5, 16) == 16


def test_deepest_layer_is_the_last_in_network_order(tiny_weights: VggWeights) -> None:
    names = tiny_weights.layer_names
    assert memory.deepest_layer(names, ["relu4_2", "relu1_1", "relu3_1"]) == "relu4_2"
    assert memory.deepest_layer(names, {"relu5_1": 0.2, "relu4_2": 1.0}) == "relu5_1"  # a mapping's keys
    assert memory.deepest_layer(names, ("pool1",)) == "pool1"


def test_tile_grid_by_hand(tiny_weights: VggWeights) -> None:
    """relu2_1 spoils 2 positions at stride 2 (conv1_1, conv1_2 -> pool1 halves 2 to 1 -> conv2_1): a halo of 4,
    aligned to 2; a tile of 5 rounds down to 4. A 6 x 9 image: rows [0, 4), [4, 6), columns [0, 4), [4, 8), [8, 9),
    each crop widened by 4 and cut at the edges."""
    specs = memory.layer_specs(tiny_weights)
    grid = memory.TileGrid.of(specs, ["relu1_1", "relu2_1"], 5)
    assert (grid.halo, grid.align, grid.tile_size) == (4, 2, 4)
    tiles = grid.tiles(6, 9)
    assert [(t.rows, t.cols) for t in tiles] == [
        ((0, 4), (0, 4)),
        ((0, 4), (4, 8)),
        ((0, 4), (8, 9)),
        ((4, 6), (0, 4)),
        ((4, 6), (4, 8)),
        ((4, 6), (8, 9)),
    ]
    assert [(t.crop_rows, t.crop_cols) for t in tiles[:3]] == [((0, 6), (0, 8)), ((0, 6), (0, 9)), ((0, 6), (4, 9))]
    assert tiles[-1].geometry.tolist() == [0, 4, 4, 6, 8, 9]
    assert grid.layer_size("relu2_1", 6, 9) == (3, 5) and grid.layer_size("relu1_1", 6, 9) == (6, 9)
    assert not grid.needs_tiles(4, 4) and grid.needs_tiles(4, 5) and grid.needs_tiles(5, 1)
    with pytest.raises(NeuralStyleError, match="tile_size"):
        memory.TileGrid.of(specs, ["relu2_1"], 0)
    with pytest.raises(NeuralStyleError, match=r"^tile_size is 1, smaller than the smallest tile, 2 px"):
        memory.TileGrid.of(specs, ["relu2_1"], 1)  # relu2_1 is after one pooling: stride 2
    assert memory.TileGrid.of(specs, ["relu2_1"], 2).tile_size == 2


def test_the_one_rule_of_when_a_run_is_tiled(tiny_weights: VggWeights) -> None:
    """Tiled when a tile size is given and the image is larger than the tile rounded to the alignment: a tile of
    100 at relu5_1 (aligned to 16) is 96 px, so a 98 px image is tiled and a 96 px one is not."""
    specs = memory.layer_specs(tiny_weights)
    assert memory.tile_grid(specs, ["relu5_1"], None, 1000, 1000) is None
    assert memory.tile_grid(specs, ["relu5_1"], 100, 96, 96) is None
    grid = memory.tile_grid(specs, ["relu1_1", "relu5_1"], 100, 98, 50)
    assert grid is not None and (grid.tile_size, grid.halo) == (96, 80)
    assert memory.tile_plan(tiny_weights, "relu5_1", 100, 98, 50) == (96, 80)
    assert memory.tile_plan(tiny_weights, "relu5_1", 100, 96, 96) is None
    assert memory.tile_plan(tiny_weights, "relu2_1", 5, 5, 4) == (4, 4)  # the grid above
    assert memory.tile_plan(tiny_weights, "relu5_1", None, 5000, 5000) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8G", 8 * 2**30), ("1.5G", 3 * 2**29), ("500M", 500 * 2**20), ("64k", 64 * 2**10), ("8GB", 8 * 2**30)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert memory.parse_size(text) == expected
    assert memory.parse_size("8GiB") == 8 * 2**30 and memory.parse_size("1000000") == 1_000_000


@pytest.mark.parametrize("text", ["", "lots", "0", "-1G", "nanG", "infG", "G", "0.5"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        memory.parse_size(text)


def test_lbfgs_bytes_by_hand() -> None:
    # (2 x 10 correction vectors + 6 vectors) x 100 x 200 pixels x 3 channels x 4 bytes (float32), per image
    assert memory.lbfgs_bytes(100, 200, 10) == 26 * 60_000 * 4
    assert memory.lbfgs_bytes(100, 200, 10, batch=3) == 3 * 26 * 60_000 * 4


def test_estimate_tiled_bytes_by_hand(tiny_weights: VggWeights) -> None:
    """One crop's step (tile 16 + 2 x 80 halo = 176 px), 14 image buffers, relu4_2's targets twice."""
    crop = RUNTIME_BYTES + TINY_WEIGHT_BYTES + TINY_FLOATS_PER_PIXEL * 176 * 176 * 4 * 1.25
    buffers = 14 * 200 * 300 * 3 * 4
    targets = 8 / 64 * 200 * 300 * 4 * 2  # relu4_2: 8 channels at stride 8
    assert memory.estimate_tiled_bytes(tiny_weights, 200, 300, 16) == int(crop + buffers + targets)
    # A tile of 20 is rounded down to 16; a crop never exceeds the image.
    assert memory.estimate_tiled_bytes(tiny_weights, 200, 300, 20) == int(crop + buffers + targets)
    small = RUNTIME_BYTES + TINY_WEIGHT_BYTES + TINY_FLOATS_PER_PIXEL * 100 * 176 * 4 * 1.25  # 100 rows, all of them
    assert memory.estimate_tiled_bytes(tiny_weights, 100, 300, 16) == int(
        small + 14 * 100 * 300 * 12 + 8 / 64 * 100 * 300 * 8
    )


@pytest.fixture(scope="module")
def wide_weights(tmp_path_factory: pytest.TempPathFactory) -> VggWeights:
    """A network with 128 channels in its first blocks: its activations (about 3.6 kB a pixel) dwarf the image
    buffers of a tiled run (168 bytes a pixel), as VGG-19's do, so tiles save memory."""
    from conftest import he_scaled, write_vgg_mat

    from neural_style.matconvnet import read_matconvnet

    path = tmp_path_factory.mktemp("wide") / "wide.mat"
    write_vgg_mat(path, channels=(128, 128, 64, 64, 64), tamper=he_scaled)
    return read_matconvnet(path)


def test_choose_tile(wide_weights: VggWeights) -> None:
    height, width = 1000, 1500

    def tiled(tile: int) -> int:
        return memory.estimate_tiled_bytes(wide_weights, height, width, tile)

    whole = memory.estimate_bytes(wide_weights, height, width)
    assert tiled(400) < whole
    assert memory.choose_tile(wide_weights, height, width, whole) is None  # fits untiled
    budget = tiled(400) + 1
    tile = memory.choose_tile(wide_weights, height, width, budget)
    assert tile == 400 and tiled(tile) <= budget < tiled(tile + 16)
    # An extra need (L-BFGS) shrinks the tile.
    smaller = memory.choose_tile(wide_weights, height, width, budget, extra=10**8)
    assert smaller is not None and smaller < tile and tiled(smaller) + 10**8 <= budget
    with pytest.raises(ValueError) as info:
        memory.choose_tile(wide_weights, height, width, tiled(64) - 1)
    assert info.value.args[0] == tiled(64)  # what the smallest tile would need


def test_largest_tiled_width(wide_weights: VggWeights) -> None:
    budget = 2 * 2**30

    def needed(w: int) -> int:
        return memory.estimate_tiled_bytes(wide_weights, int(1.5 * w), w, 256)

    width = memory.largest_tiled_width(wide_weights, 1.5, budget, 256)
    assert needed(width) <= budget < needed(width + 1)
    assert width > memory.largest_width(wide_weights, 1.5, budget)  # tiles make room for larger images
    assert memory.largest_tiled_width(wide_weights, 1.5, RUNTIME_BYTES, 256) == 0
