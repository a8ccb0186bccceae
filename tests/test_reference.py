"""Our stylize() against an independent re-statement of neural-style's TF1 graph (scripts/reference_tf1.py).

Both start from the same image and run the same Adam steps; the four loss terms must agree to 1e-4 (relative) at
every step, before the first step included. The synthetic networks are small and ReLU-heavy, so a tiny difference
in the optimiser's step length (see test_adam_matches_tf1_adam_optimizer) flips a few activations and then shows up
as a loss mismatch of about 1e-3 within two steps: these tests are sensitive to the optimiser's float32 rounding
on purpose.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_vgg_mat

from neural_style.config import StyleConfig
from neural_style.engines import Adam
from neural_style.image_io import read_image, resize, scaled_size
from neural_style.matconvnet import VggWeights, load_vgg
from neural_style.stylization import initial_image, stylize

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_FILE = SHARED / "weights" / "vgg19-layout-hed-edges.mat"
REAL_CONTENT = SHARED / "images" / "grace_hopper.jpg"
REAL_STYLE = SHARED / "images" / "starry_night.jpg"

CHANNELS = (4, 6, 8, 8, 8)
STEPS = 5
SEED = 7
NOISEBLEND = 0.3  # start from the content image with some noise, so both sides share content and noise
RTOL = 1e-4
KEYS = ("content", "style", "tv", "total")


def _load_reference():
    path = Path(__file__).resolve().parents[1] / "scripts" / "reference_tf1.py"
    spec = importlib.util.spec_from_file_location("reference_tf1", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reference_tf1", module)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


def _he_scaled(name: str, kernel: np.ndarray) -> np.ndarray:
    """Scales the standard normal kernels so activations keep their magnitude through 16 layers (no overflow)."""
    fan_in = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
    return (kernel * np.sqrt(2.0 / fan_in)).astype(np.float32)


@pytest.fixture(scope="module")
def synthetic_weights(tmp_path_factory: pytest.TempPathFactory) -> VggWeights:
    path = tmp_path_factory.mktemp("reference") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, seed=3, tamper=_he_scaled)
    return load_vgg(path)


def _images(n_styles: int) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(11)
    content = rng.uniform(0, 255, (24, 32, 3)).astype(np.float32)
    styles = [rng.uniform(0, 255, shape).astype(np.float32) for shape in [(20, 28, 3), (30, 22, 3)][:n_styles]]
    return content, styles


def _compare(
    weights: VggWeights,
    content: np.ndarray,
    styles: list[np.ndarray],
    config: StyleConfig,
    *,
    initial: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> None:
    """Runs both and compares every term at every step; ``start`` (preprocessed) is what the reference starts from.

    By default the start is :func:`initial_image` of the config's seed and noiseblend, which stylize makes itself.
    """
    ours = [p.losses for p in stylize(weights, content, styles, config, initial=initial)]
    assert len(ours) == config.iterations + 1 and all(losses is not None for losses in ours)
    if start is None:
        start = initial_image(content, weights.mean_pixel, noiseblend=config.initial_noiseblend, seed=config.seed)
    theirs = reference.reference_losses(weights, content, styles, start, config, config.iterations, with_start=True)
    for step, (got, want) in enumerate(zip(ours, theirs, strict=True)):
        for key in KEYS:
            assert got[key].shape == (1,)
            np.testing.assert_allclose(got[key][0], want[key], rtol=RTOL, atol=0, err_msg=f"{key} at step {step}")
    # The run moved: a match of frozen images would prove little.
    assert ours[-1]["total"][0] < 0.99 * ours[0]["total"][0]


def test_adam_matches_tf1_adam_optimizer() -> None:
    """Our Adam and tf.compat.v1.train.AdamOptimizer (neural-style's), fed the same gradients, take the same steps.

    The first step is exact in float32 in TF1 (its bias correction uses the same float32 beta as the moments), so it
    must agree to a couple of ulps of the values (about 100 here, ulp 7.6e-6). Later steps may differ by float32
    rounding of beta^t (TF1 keeps a running product, a pow rounds differently; 1 - beta2^t amplifies that), a few
    parts per million of a step of 10. A step length off by a few parts per million is enough for two
    optimisations of a ReLU network to part ways after a couple of steps (see the tests below).
    """
    rng = np.random.default_rng(0)
    start = rng.uniform(-100, 100, (1, 6, 7, 3)).astype(np.float32)
    gradients = [(rng.standard_normal(start.shape) * scale).astype(np.float32) for scale in (1.0, 3.0, 0.5, 2.0, 1.0)]
    ours = tf.Variable(start)
    adam = Adam(ours, learning_rate=10.0, beta1=0.9, beta2=0.999, epsilon=1e-8)
    graph = tf.Graph()
    with graph.as_default():
        theirs = tf.Variable(start)
        gradient = tf.compat.v1.placeholder(tf.float32, start.shape)
        train = tf.compat.v1.train.AdamOptimizer(10.0, 0.9, 0.999, 1e-8).apply_gradients([(gradient, theirs)])
        initialise = tf.compat.v1.global_variables_initializer()
    session = tf.compat.v1.Session(graph=graph)  # not a context manager: that would make the graph the default
    try:
        session.run(initialise)
        for step, g in enumerate(gradients, start=1):
            adam.apply(tf.constant(g), ours)  # eager
            session.run(train, {gradient: g})
            atol = 2e-5 if step == 1 else 5e-4
            np.testing.assert_allclose(ours.numpy(), session.run(theirs), rtol=0, atol=atol, err_msg=f"step {step}")
    finally:
        session.close()


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["max", "avg"])
@pytest.mark.parametrize("blend", [None, (0.3, 0.7)], ids=["one_style", "two_styles"])
@pytest.mark.parametrize("content_weight_blend", [1.0, 0.5])
@pytest.mark.parametrize("style_layer_weight_exp", [1.0, 2.0])
def test_losses_match_reference_every_step(
    synthetic_weights: VggWeights,
    pooling: str,
    blend: tuple[float, ...] | None,
    content_weight_blend: float,
    style_layer_weight_exp: float,
) -> None:
    content, styles = _images(1 if blend is None else len(blend))
    config = StyleConfig(
        iterations=STEPS,
        print_iterations=1,
        seed=SEED,
        initial_noiseblend=NOISEBLEND,
        pooling=pooling,
        style_blend_weights=blend,
        content_weight_blend=content_weight_blend,
        style_layer_weight_exp=style_layer_weight_exp,
    )
    _compare(synthetic_weights, content, styles, config)


def test_losses_match_reference_from_an_initial_image(synthetic_weights: VggWeights) -> None:
    """The ``initial=`` path (noiseblend 0 by default) feeds the same start as preprocessing the initial image."""
    content, styles = _images(1)
    initial = np.random.default_rng(5).uniform(0, 255, content.shape).astype(np.float32)
    config = StyleConfig(iterations=STEPS, print_iterations=1, seed=SEED)
    start = (initial - synthetic_weights.mean_pixel)[None]  # what neural-style does with --initial and no noise
    _compare(synthetic_weights, content, styles, config, initial=initial, start=start)


@pytest.mark.slow
@pytest.mark.skipif(
    not (REAL_FILE.is_file() and REAL_CONTENT.is_file() and REAL_STYLE.is_file()),
    reason="../shared weights or images absent",
)
def test_losses_match_reference_on_real_features() -> None:
    """Real pretrained features (VGG-16 edge detector laid out as VGG-19), 64 px wide images."""
    weights = load_vgg(REAL_FILE)
    content = read_image(REAL_CONTENT)
    content = resize(content, scaled_size(content.shape, 64))
    style = read_image(REAL_STYLE)
    style = resize(style, scaled_size(style.shape, 64))  # neural-style scales styles to the content's width
    config = StyleConfig(iterations=STEPS, print_iterations=1, seed=SEED, initial_noiseblend=NOISEBLEND, tv_weight=1.0)
    _compare(weights, content, [style], config)
