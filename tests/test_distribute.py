"""Candidates split across two logical CPU devices with MirroredStrategy give the same results as one device.

Logical devices must be configured before TensorFlow initialises, so the check runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from neural_style.config import Candidate, StyleConfig
    from neural_style.matconvnet import read_matconvnet
    from neural_style.stylization import sweep

    weights = read_matconvnet(sys.argv[1])
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (16, 20, 3)).astype(np.float32)
    styles = [rng.uniform(0, 255, (12, 12, 3)).astype(np.float32), rng.uniform(0, 255, (14, 10, 3)).astype(np.float32)]
    candidates = [Candidate.make((1, 0), 500.0), Candidate.make((1, 1), 500.0), Candidate.make((0, 1), 50.0)]
    config = StyleConfig(iterations=4, seed=0, tv_weight=1.0, pooling=sys.argv[2])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def final(**options):
        records = [record for _, record in sweep(weights, content, styles, config, candidates, **options)]
        return records[-1]

    split, alone = final(strategy=strategy), final()
    json.dump(
        {
            "replicas": strategy.num_replicas_in_sync,
            "split": split.losses["total"].tolist(),
            "alone": alone.losses["total"].tolist(),
            "max_pixel_difference": float(np.abs(split.images - alone.images).max()),
        },
        sys.stdout,
    )
    """
)


def _he_scaled(name: str, kernel: np.ndarray) -> np.ndarray:
    return kernel * np.float32(np.sqrt(2.0 / (kernel.shape[0] * kernel.shape[1] * kernel.shape[2])))


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_two_logical_devices_match_one(make_vgg_mat, tmp_path: Path, pooling: str) -> None:
    """3 candidates over 2 logical CPUs (split 2 + 1) equal the same sweep on one device, loss and pixels."""
    network = make_vgg_mat(channels=(4, 6, 8, 8, 8), tamper=_he_scaled).path
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(network), pooling], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["replicas"] == 2
    np.testing.assert_allclose(figures["split"], figures["alone"], rtol=1e-5)
    assert figures["max_pixel_difference"] < 1e-2
