"""Draws the regions example of the README: two styles of different colours, one on each half of the content image.

python scripts/make_region_example.py --network weights/imagenet-vgg-verydeep-19.mat

Stylizes examples/content.png with a warm style on the left and a cold one on the right (masks with a soft edge),
and once more with the same two styles blended everywhere, for comparison. Writes examples/regions.png (content,
the left mask, the two styles, the result with regions, the global blend) and prints, for each half of both results,
the distance of its mean colour to each style's mean colour (RGB, 0..255).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from neural_style.cli.report import contact_sheet
from neural_style.config import StyleConfig
from neural_style.image_io import read_image, resize, resize_styles, scaled_size, write_image
from neural_style.matconvnet import load_vgg
from neural_style.regions import Regions
from neural_style.stylization import stylize

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def two_styles(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Swirls in reds and oranges; diagonal strokes in blues and greens."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    swirl = np.sin(12 * np.hypot(xx - 0.4, yy - 0.45) + 5 * np.arctan2(yy - 0.45, xx - 0.4))
    t = np.clip((swirl + 1) / 2, 0, 1)[..., None]
    warm = np.array([120, 20, 15]) + t * (np.array([250, 180, 60]) - np.array([120, 20, 15]))
    strokes = np.sin(40 * (xx + yy) + 3 * np.sin(9 * yy)) * 0.6 + np.sin(13 * (xx - yy)) * 0.4
    s = np.clip((strokes + 1) / 2, 0, 1)[..., None]
    cold = np.array([10, 40, 100]) + s * (np.array([90, 220, 190]) - np.array([10, 40, 100]))
    return warm.astype(np.float32), cold.astype(np.float32)


def halves(height: int, width: int, edge: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Left and right masks that cross over linearly in a band ``edge`` x width wide around the middle."""
    x = (np.arange(width) + 0.5) / width
    right = np.clip((x - 0.5) / edge + 0.5, 0, 1)
    right_mask = np.broadcast_to(right, (height, width)).astype(np.float32)
    return 1 - right_mask, right_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", required=True, help="MatConvNet VGG-19 file")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--output", default=str(EXAMPLES / "regions.png"))
    args = parser.parse_args()

    weights = load_vgg(args.network)
    content = read_image(EXAMPLES / "content.png")
    content = resize(content, scaled_size(content.shape, args.width))
    height, width = content.shape[:2]
    warm, cold = two_styles()
    styles = resize_styles([warm, cold], None, width)
    left, right = halves(height, width)
    config = StyleConfig(iterations=args.iterations, seed=0, initial_noiseblend=0.0)
    results = {}
    for name, regions in (("regions", Regions((left, right))), ("global blend", None)):
        start = time.time()
        records = list(stylize(weights, content, styles, config, regions=regions))
        results[name] = records[-1].image
        print(f"{name}: {args.iterations} iterations at {width}x{height} in {time.time() - start:.0f} s")
    means = {"warm": warm.reshape(-1, 3).mean(axis=0), "cold": cold.reshape(-1, 3).mean(axis=0)}
    print("mean colour distance to each style (RGB 0..255):")
    for name, image in results.items():
        for side, half in (("left", image[:, : width // 2]), ("right", image[:, width // 2 :])):
            mean = half.reshape(-1, 3).mean(axis=0)
            distances = ", ".join(f"{style} {np.linalg.norm(mean - m):.1f}" for style, m in means.items())
            print(f"  {name:12s} {side:5s} half: {distances}")
    mask_rgb = np.repeat(left[..., None] * 255, 3, axis=-1)
    crop = round(warm.shape[1] * height / width)  # the styles' top parts, of the content's aspect ratio
    panels = [content, mask_rgb, resize(warm[:crop], (height, width)), resize(cold[:crop], (height, width))]
    panels += list(results.values())
    captions = ["content", "left mask", "style 1 (left)", "style 2 (right)", "with regions", "global blend"]
    write_image(args.output, contact_sheet(panels, captions, tile_width=width))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
