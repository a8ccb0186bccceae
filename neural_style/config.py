"""Settings: the frozen dataclasses of a stylization run and a training run, layer names, and shared checks.

Nothing here needs TensorFlow, so a command checks every setting in a fraction of a second. Errors name the
setting by its Python name (``NeuralStyleError.setting``); the commands turn that into their flag.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence

from neural_style.errors import NeuralStyleError

__all__ = [
    "COLOR_MODES",
    "CONTENT_LAYERS",
    "EXPORT_LAYERS",
    "MAX_CANDIDATES",
    "MAX_SEED",
    "MIN_IMAGE_SIZE",
    "OPTIMIZERS",
    "POOLING",
    "PRECISIONS",
    "STYLE_LAYERS",
    "FRAME_LEARNING_RATE_SHARE",
    "PASS_BLEND",
    "TEMPORAL_OFFSETS",
    "TEMPORAL_WEIGHT",
    "TOLERANCE_WINDOW",
    "TRAIN_CONTENT_LAYERS",
    "TRAIN_STYLE_LAYERS",
    "Candidate",
    "LossSettings",
    "StyleConfig",
    "TemporalConfig",
    "TrainConfig",
    "check_blend_weights",
    "check_layer_lists",
    "check_pooling",
    "content_layer_weights",
    "even_blends",
    "loss_layers",
    "make_candidates",
    "style_layer_weights",
]

POOLING = ("max", "avg")
OPTIMIZERS = ("adam", "lbfgs")
PRECISIONS = ("float32", "bfloat16", "float16")
# --preserve_colors: none, luminance-only transfer, or the style's colours matched to the content's first.
COLOR_MODES = ("none", "luminance", "histogram")
# Iterations over which the tolerance rule measures the relative improvement of the loss.
TOLERANCE_WINDOW = 20
# Video: weight of the temporal term, Ruder et al.'s ratio on our loss scale. Their code weighs content, style and
# temporal terms 5 : 100 : 1000 (the paper's 1 : 20 : 200) with terms defined as ours are: the content term a mean of
# squared features, each style layer's a mean of squared differences of Gram matrices normalised by the layer's size,
# the temporal term a mean of squared pixel differences. Their style weight, 100, applies to each of the five layers;
# our 500 is shared by them (100 each), so all three ratios are theirs. Their pixels run to 256, which changes the
# temporal term's ratio by (256/255)^2, under 1%.
TEMPORAL_WEIGHT = 1e3
# Video, Adam: the frames that start from a result take steps this share of --learning_rate by default. Adam's first
# steps from a fresh state move every pixel by about the learning rate whatever the gradient, so at 10 a frame that
# starts where the one before ended (a still scene) is first shaken by about 10 levels, then spends its iterations
# coming back; at a tenth of it the frame stays put (scripts/benchmark_temporal.py).
FRAME_LEARNING_RATE_SHARE = 0.1
# Video: the earlier frames each frame is held close to, by their distance (1: the frame before). More offsets are
# Ruder et al.'s long-term consistency: each pixel is compared with the nearest of them in which it was not occluded.
TEMPORAL_OFFSETS = (1,)
# Video, multi-pass: the share of the warped neighbour in a frame's start where the flow is trusted, the rest its
# result of the pass before (Ruder et al.'s delta).
PASS_BLEND = 0.5

# The largest seed: NumPy takes any non-negative integer, TensorFlow's stateless seeds fit in 32 bits.
MAX_SEED = 2**32 - 1
MAX_CANDIDATES = 10_000  # the most candidates one sweep holds (each is an image being optimised)
# The smallest image side: total variation compares each pixel with its neighbours below and to the right.
MIN_IMAGE_SIZE = 2
# The loss terms of a run, in the order they are reported and kept.
TERMS = ("content", "style", "tv", "total")

# neural-style's layers: content relu4_2 (and relu5_2 with a content weight blend), style relu1_1..relu5_1.
CONTENT_LAYERS = ("relu4_2", "relu5_2")
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# Johnson et al.'s layers for the feed-forward transformer's loss.
TRAIN_CONTENT_LAYERS = ("relu3_3",)
TRAIN_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
# neural-style's style and content layers in network order: what an exported feature extractor returns by default.
EXPORT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1", "relu5_2")


def check_pooling(pooling: str) -> None:
    """Raises NeuralStyleError unless ``pooling`` is one of :data:`POOLING`."""
    if pooling not in POOLING:
        raise NeuralStyleError(f"is '{pooling}'; use one of: {', '.join(POOLING)}", setting="pooling")


def _check_seed(seed: int | None) -> None:
    """A seed is None (fresh randomness) or a whole number NumPy's and TensorFlow's generators all take."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise NeuralStyleError(
            f"is {seed}; give a whole number from 0 to {MAX_SEED} (or leave it unset)", setting="seed"
        )


def check_layer_lists(
    lists: Sequence[tuple[str, Sequence[str]]], layer_names: Sequence[str] | None, example: str
) -> None:
    """Raises NeuralStyleError naming the first of ``lists`` ((setting, layers) pairs) that is empty, names a layer
    twice or (given the network's ``layer_names``) names a layer that is not one of the network's conv or ReLU
    layers (the layers the losses take)."""
    for name, layers in lists:
        if not layers:
            raise NeuralStyleError(f"is empty; name at least one layer, e.g. {example}", setting=name)
        if len(set(layers)) != len(layers):
            raise NeuralStyleError(f"names a layer twice: {','.join(layers)}", setting=name)
        if layer_names is not None:
            accepted = [layer for layer in layer_names if layer.startswith(("conv", "relu"))]
            unknown = [layer for layer in layers if layer not in accepted]
            if unknown:
                raise NeuralStyleError(
                    f"names {', '.join(unknown)}, not a conv or ReLU layer of the network; give some of "
                    f"{', '.join(accepted)}",
                    setting=name,
                )


def _check_finite_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise NeuralStyleError(f"is {value}; it must be a finite number >= 0", setting=name)


def check_blend_weights(weights: Sequence[float], n_styles: int | None) -> None:
    """Raises NeuralStyleError unless there is one non-negative weight per style and their sum is positive."""
    if n_styles is not None and len(weights) != n_styles:
        raise NeuralStyleError(
            f"has {len(weights)} values for {n_styles} styles; give one each", setting="style_blend_weights"
        )
    if not all(math.isfinite(w) for w in weights):
        raise NeuralStyleError(
            f"has {', '.join(map(str, weights))}; give finite numbers", setting="style_blend_weights"
        )
    if any(w < 0 for w in weights) or not 0 < sum(weights) < math.inf:
        raise NeuralStyleError("must be non-negative numbers with a positive sum", setting="style_blend_weights")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One image of a batch: its style blend weights (normalised to sum 1) and its style weight."""

    blend: tuple[float, ...]
    style_weight: float

    @classmethod
    def make(cls, blend: Sequence[float], style_weight: float) -> Candidate:
        """Normalises ``blend`` to sum 1; raises NeuralStyleError for negative weights or a zero sum."""
        check_blend_weights(blend, None)
        _check_finite_non_negative("style_weight", style_weight)
        total = sum(blend)
        return cls(tuple(float(w) / total for w in blend), float(style_weight))


def even_blends(k: int) -> list[tuple[float, float]]:
    """K evenly spaced blends of two styles, from pure first to pure second, both ends included."""
    if k < 2:
        raise NeuralStyleError(f"is {k}; it needs at least 2 blends (both pure styles)", setting="blend_sweep")
    if k > MAX_CANDIDATES:
        raise NeuralStyleError(
            f"is {k}; a sweep holds at most {MAX_CANDIDATES:,} candidates: sweep fewer blends, or in parts",
            setting="blend_sweep",
        )
    return [(1.0 - i / (k - 1), i / (k - 1)) for i in range(k)]


def make_candidates(
    config: StyleConfig,
    n_styles: int,
    blends: Sequence[Sequence[float]] | None = None,
    style_weights: Sequence[float] | None = None,
) -> list[Candidate]:
    """Every combination of the blends and the style weights (each defaulting to the config's)."""
    if blends is None:
        blends = [config.style_blend_weights or (1.0,) * n_styles]
    if style_weights is None:
        style_weights = [config.style_weight]
    if len(blends) * len(style_weights) > MAX_CANDIDATES:
        raise NeuralStyleError(
            f"{len(blends)} blends x {len(style_weights)} style weights make {len(blends) * len(style_weights):,} "
            f"candidates; a sweep holds at most {MAX_CANDIDATES:,}: sweep fewer, or in parts"
        )
    return [Candidate.make(blend, weight) for blend, weight in itertools.product(blends, style_weights)]


def content_layer_weights(blend: float, layers: Sequence[str] = CONTENT_LAYERS) -> dict[str, float]:
    """relu4_2 weighs ``blend``, relu5_2 weighs ``1 - blend``; layers of weight 0 are left out.

    Other ``layers`` than neural-style's pair (relu4_2, relu5_2) weigh equally, 1 / len(layers), and ``blend`` is
    not used (:meth:`neural_style.config.StyleConfig.validate` refuses a blend other than 1 for them).
    """
    if tuple(layers) != CONTENT_LAYERS:
        return {layer: 1.0 / len(layers) for layer in layers}
    weights = dict(zip(CONTENT_LAYERS, (blend, 1.0 - blend), strict=True))
    return {layer: w for layer, w in weights.items() if w != 0.0}


def style_layer_weights(exp: float, layers: Sequence[str] = STYLE_LAYERS) -> dict[str, float]:
    """Weights 1, exp, exp^2, ... over ``layers``, normalised to sum 1; layers of weight 0 are left out.

    Raises:
        NeuralStyleError: the weights do not sum to a positive number.
    """
    n = len(layers)
    # For exp > 1 the weights are computed relative to the largest one, which cannot overflow.
    raw = [exp**i for i in range(n)] if exp <= 1 else [(1.0 / exp) ** (n - 1 - i) for i in range(n)]
    total = sum(raw)
    if not total > 0:
        raise NeuralStyleError(f"{exp} gives style layer weights that sum to {total}", setting="style_layer_weight_exp")
    return {layer: w / total for layer, w in zip(layers, raw, strict=True) if w != 0.0}


def loss_layers(content_layers: Sequence[str], style_layers: Sequence[str]) -> tuple[str, ...]:
    """The network layers a loss uses: the content layers, then the style layers not among them."""
    return tuple(dict.fromkeys([*content_layers, *style_layers]))


@dataclasses.dataclass(frozen=True)
class LossSettings:
    """What an objective weighs and the network it is computed on: the settings of
    :meth:`neural_style.objective.Objective.from_settings`, from a run's (:attr:`StyleConfig.loss_settings`), a
    trainer's (:attr:`TrainConfig.loss_settings`) or a Keras loss's own."""

    content_layers: Mapping[str, float]  # {layer: weight} of the content term
    style_layers: Mapping[str, float]  # {layer: weight} of the style term
    content_weight: float = 5e0  # weight of the content term
    style_weight: float = 5e2  # weight of the style term
    tv_weight: float = 1e2  # weight of the total variation term
    pooling: str = "max"  # the network's pooling, "max" or "avg"
    precision: str = "float32"  # dtype of the network's convolutions

    @property
    def layers(self) -> tuple[str, ...]:
        """The network layers the terms use (:func:`loss_layers`); the deepest of them decides a tile's halo."""
        return loss_layers(list(self.content_layers), list(self.style_layers))


@dataclasses.dataclass(frozen=True)
class StyleConfig:
    """Settings of one stylization run; the defaults are neural-style's."""

    iterations: int = 1000  # optimisation steps
    content_weight: float = 5e0  # weight of the content loss
    content_weight_blend: float = 1.0  # relu4_2 weighs this, relu5_2 weighs 1 - this
    style_weight: float = 5e2  # weight of the style loss
    style_layer_weight_exp: float = 1.0  # style layer weights 1, e, e^2, ... from relu1_1 to relu5_1
    style_blend_weights: tuple[float, ...] | None = None  # one per style, normalised to sum 1; None: equal
    tv_weight: float = 1e2  # weight of the total variation loss
    learning_rate: float = 1e1  # Adam step size
    beta1: float = 0.9  # Adam decay of the first moment
    beta2: float = 0.999  # Adam decay of the second moment
    epsilon: float = 1e-8  # Adam epsilon
    pooling: str = "max"  # "max" or "avg"
    initial_noiseblend: float | None = None  # share of noise in the start image; None: 0 with an initial, else 1
    # keep the content's colours: "none", "luminance" (True) or "histogram"; see neural_style.color
    preserve_colors: bool | str = False
    print_iterations: int | None = None  # report all loss terms every this many steps (and at the end)
    checkpoint_iterations: int | None = None  # track the best image and report it every this many steps
    seed: int | None = None  # seed of the initial noise; None: a fresh one each run
    optimizer: str = "adam"  # "adam" (an iteration is one step) or "lbfgs" (one L-BFGS iteration, several evaluations)
    lbfgs_memory: int = 10  # L-BFGS history size (correction pairs kept)
    stop_at_loss: float | None = None  # stop as soon as the total loss is at or below this
    tolerance: float | None = None  # stop when the loss improved by less than this fraction over 20 iterations
    precision: str = "float32"  # dtype of the VGG convolutions: float32, bfloat16 or float16
    xla: bool = False  # compile the step with XLA (jit_compile)
    clip: bool = False  # Adam: clip the image to 0..255 after every step (projected Adam); L-BFGS always keeps to it
    average_decay: float | None = None  # the result is an exponential moving average of the iterates with this decay
    content_layers: tuple[str, ...] = CONTENT_LAYERS  # content layers; the default pair is weighed by the blend
    style_layers: tuple[str, ...] = STYLE_LAYERS  # style layers, weighed 1, e, e^2, ... in this order (normalised)
    tile_size: int | None = None  # evaluate images larger than this (px) tile by tile: exact, memory set by the tile

    @property
    def weighted_content_layers(self) -> tuple[str, ...]:
        """The content layers that weigh anything (:func:`content_layer_weights`): e.g. only relu4_2 by default."""
        return tuple(content_layer_weights(self.content_weight_blend, self.content_layers))

    @property
    def loss_settings(self) -> LossSettings:
        """The objective's settings: layers weighted by :func:`content_layer_weights` and :func:`style_layer_weights`
        (only those that weigh anything), the three weights, pooling and precision."""
        content = content_layer_weights(self.content_weight_blend, self.content_layers)
        return _loss_settings(self, content, precision=self.precision)

    @property
    def color_mode(self) -> str:
        """``preserve_colors`` as one of :data:`COLOR_MODES` (True is "luminance", False "none")."""
        if isinstance(self.preserve_colors, bool):
            return "luminance" if self.preserve_colors else "none"
        return self.preserve_colors

    def validate(self, n_styles: int | None = None, layer_names: Sequence[str] | None = None) -> None:
        """Raises NeuralStyleError naming the first setting that is out of range.

        Args:
            n_styles: number of style images, to check the count of ``style_blend_weights`` against.
            layer_names: the network's layers, to check the content and style layers against.
        """
        if self.iterations < 1:
            raise NeuralStyleError(f"is {self.iterations}; it must be at least 1", setting="iterations")
        check_pooling(self.pooling)
        for name in ("print_iterations", "checkpoint_iterations"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise NeuralStyleError(f"is {value}; it must be at least 1 (or left unset)", setting=name)
        if self.initial_noiseblend is not None and not 0.0 <= self.initial_noiseblend <= 1.0:
            raise NeuralStyleError(f"is {self.initial_noiseblend}; it must be in [0, 1]", setting="initial_noiseblend")
        for name in ("learning_rate", "epsilon"):
            if not 0 < getattr(self, name) < math.inf:
                raise NeuralStyleError("must be a positive finite number", setting=name)
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise NeuralStyleError("must be in [0, 1)", setting=name)
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_finite_non_negative(name, getattr(self, name))
        if not (math.isfinite(self.style_layer_weight_exp) and self.style_layer_weight_exp >= 0):
            raise NeuralStyleError(
                f"is {self.style_layer_weight_exp}; it must be >= 0", setting="style_layer_weight_exp"
            )
        if not 0.0 <= self.content_weight_blend <= 1.0:
            raise NeuralStyleError(
                f"is {self.content_weight_blend}; it must be in [0, 1]", setting="content_weight_blend"
            )
        if self.style_blend_weights is not None:
            check_blend_weights(self.style_blend_weights, n_styles)
        if self.optimizer not in OPTIMIZERS:
            raise NeuralStyleError(f"is '{self.optimizer}'; use one of: {', '.join(OPTIMIZERS)}", setting="optimizer")
        if self.lbfgs_memory < 1:
            raise NeuralStyleError(f"is {self.lbfgs_memory}; it must be at least 1", setting="lbfgs_memory")
        if self.tolerance is not None and not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise NeuralStyleError(f"is {self.tolerance}; it must be a number >= 0", setting="tolerance")
        if self.stop_at_loss is not None and not math.isfinite(self.stop_at_loss):
            raise NeuralStyleError(f"is {self.stop_at_loss}; it must be a finite number", setting="stop_at_loss")
        _check_seed(self.seed)
        if self.precision not in PRECISIONS:
            raise NeuralStyleError(f"is '{self.precision}'; use one of: {', '.join(PRECISIONS)}", setting="precision")
        if self.average_decay is not None and not 0.0 < self.average_decay < 1.0:
            raise NeuralStyleError(
                f"is {self.average_decay}; it must be in (0, 1), e.g. 0.9 (or left unset)", setting="average_decay"
            )
        if self.color_mode not in COLOR_MODES:
            raise NeuralStyleError(
                f"is '{self.preserve_colors}'; use one of: {', '.join(COLOR_MODES)}", setting="preserve_colors"
            )
        lists = (("content_layers", self.content_layers), ("style_layers", self.style_layers))
        check_layer_lists(lists, layer_names, STYLE_LAYERS[0])
        if self.tile_size is not None and self.tile_size < 1:
            raise NeuralStyleError(f"is {self.tile_size}; it must be at least 1 (or left unset)", setting="tile_size")
        if self.content_weight_blend != 1.0 and tuple(self.content_layers) != CONTENT_LAYERS:
            raise NeuralStyleError(
                f"is {self.content_weight_blend}, but it weighs only the default content layers "
                f"{','.join(CONTENT_LAYERS)}, not {','.join(self.content_layers)}: leave it at 1 (custom content "
                "layers weigh equally)",
                setting="content_weight_blend",
            )


@dataclasses.dataclass(frozen=True)
class TemporalConfig:
    """Settings of a video run beyond those of its frames (a :class:`StyleConfig`, which applies to every frame)."""

    temporal_weight: float = TEMPORAL_WEIGHT  # weight of the temporal term; 0: independent frames
    frame_iterations: int | None = None  # iterations of the frames that start from a result; None: the config's
    # Adam step size of the frames that start from a result; None: FRAME_LEARNING_RATE_SHARE x the config's
    frame_learning_rate: float | None = None
    temporal_offsets: tuple[int, ...] = TEMPORAL_OFFSETS  # earlier frames each frame is held close to; includes 1
    passes: int = 1  # passes over the clip, forward, backward, forward, ... (Ruder et al.'s multi-pass)
    pass_blend: float = PASS_BLEND  # multi-pass: the warped neighbour's share of a frame's start where trusted

    def validate(self) -> None:
        """Raises NeuralStyleError naming the first setting that is out of range."""
        if not (math.isfinite(self.temporal_weight) and self.temporal_weight >= 0):
            raise NeuralStyleError(
                f"is {self.temporal_weight}; it must be a finite number, 0 or more", setting="temporal_weight"
            )
        if self.frame_iterations is not None and self.frame_iterations < 1:
            raise NeuralStyleError(f"is {self.frame_iterations}; it must be at least 1", setting="frame_iterations")
        if self.frame_learning_rate is not None and not 0 < self.frame_learning_rate < math.inf:
            raise NeuralStyleError(
                f"is {self.frame_learning_rate}; it must be a positive finite number", setting="frame_learning_rate"
            )
        offsets = self.temporal_offsets
        listed = ",".join(str(offset) for offset in offsets)
        if not offsets or any(int(offset) != offset or offset < 1 for offset in offsets):
            raise NeuralStyleError(
                f"is '{listed}'; give whole numbers of frames, 1 or more, e.g. 1,2,5", setting="temporal_offsets"
            )
        if list(offsets) != sorted(set(offsets)) or offsets[0] != 1:
            raise NeuralStyleError(
                f"is '{listed}'; give increasing offsets starting with 1 (the frame before), e.g. 1,2,5",
                setting="temporal_offsets",
            )
        if self.passes < 1:
            raise NeuralStyleError(f"is {self.passes}; it must be at least 1", setting="passes")
        if not 0.0 <= self.pass_blend <= 1.0:
            raise NeuralStyleError(f"is {self.pass_blend}; it must be in [0, 1]", setting="pass_blend")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of a feed-forward training run; see :mod:`neural_style.train` for the choice of loss weights."""

    image_size: int = 256  # side of the square training crops, in pixels
    batch_size: int = 4  # images per step
    epochs: int = 2  # passes over the training images, when steps is None
    steps: int | None = None  # optimisation steps in all; overrides epochs
    content_weight: float = 1.0  # weight of the content loss
    style_weight: float = 20.0  # weight of the style loss
    tv_weight: float = 1.0  # weight of the total variation loss
    learning_rate: float = 1e-3  # Adam step size
    content_layers: tuple[str, ...] = TRAIN_CONTENT_LAYERS  # compared with the photo's activations, equal weights
    style_layers: tuple[str, ...] = TRAIN_STYLE_LAYERS  # compared with the style's Gram matrices
    style_layer_weight_exp: float = 1.0  # style layers weigh 1, e, e^2, ... (normalised), as in neural-style
    style_size: int | None = None  # the style image's longer side is resized to this; None: image_size
    pooling: str = "max"  # pooling of the loss network, "max" or "avg"
    base_filters: int = 32  # transformer width (the paper's 32); smaller for quick experiments
    residual_blocks: int = 5  # transformer residual blocks (the paper's 5)
    seed: int | None = None  # seed of the initial weights, the shuffling and the crops; None: fresh each run

    def validate(self, layer_names: Sequence[str] | None = None) -> None:
        """Raises NeuralStyleError naming the first setting out of range.

        Args:
            layer_names: the loss network's layers, to check the content and style layers against.
        """
        if self.image_size < MIN_IMAGE_SIZE:
            raise NeuralStyleError(
                f"is {self.image_size}; the smallest size that works is {MIN_IMAGE_SIZE} (the total variation term "
                "needs neighbouring pixels)",
                setting="image_size",
            )
        for name in ("batch_size", "epochs", "base_filters"):
            if getattr(self, name) < 1:
                raise NeuralStyleError(f"is {getattr(self, name)}; it must be at least 1", setting=name)
        for name in ("steps", "style_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise NeuralStyleError(f"is {getattr(self, name)}; it must be at least 1", setting=name)
        if self.residual_blocks < 0:
            raise NeuralStyleError(f"is {self.residual_blocks}; it must be 0 or more", setting="residual_blocks")
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_finite_non_negative(name, getattr(self, name))
        if not self.content_weight + self.style_weight + self.tv_weight > 0:
            raise NeuralStyleError(
                "is 0, as are style_weight and tv_weight; nothing to learn", setting="content_weight"
            )
        if not (math.isfinite(self.style_layer_weight_exp) and self.style_layer_weight_exp > 0):
            raise NeuralStyleError(
                f"is {self.style_layer_weight_exp}; it must be a positive number", setting="style_layer_weight_exp"
            )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise NeuralStyleError(f"is {self.learning_rate}; it must be a positive number", setting="learning_rate")
        check_pooling(self.pooling)
        _check_seed(self.seed)
        lists = (("content_layers", self.content_layers), ("style_layers", self.style_layers))
        check_layer_lists(lists, layer_names, STYLE_LAYERS[0])

    def total_steps(self, n_images: int, replicas: int = 1) -> int:
        """``steps``, or enough steps for ``epochs`` passes over ``n_images`` images (the last batch rounded up) when
        a step takes ``batch_size`` images on each of ``replicas`` replicas."""
        if self.steps is not None:
            return self.steps
        return max(1, math.ceil(self.epochs * n_images / (self.batch_size * replicas)))

    @property
    def loss_layers(self) -> tuple[str, ...]:
        """Content then style layers, each once."""
        return loss_layers(self.content_layers, self.style_layers)

    @property
    def loss_settings(self) -> LossSettings:
        """The objective's settings: the content layers weigh equally, the style layers by
        :func:`style_layer_weights`; the three weights and the pooling."""
        return _loss_settings(self, {layer: 1.0 / len(self.content_layers) for layer in self.content_layers})


def _loss_settings(
    config: StyleConfig | TrainConfig, content_layers: Mapping[str, float], precision: str = "float32"
) -> LossSettings:
    """The settings of a run's or a trainer's objective, with these content layer weights."""
    return LossSettings(
        content_layers,
        style_layer_weights(config.style_layer_weight_exp, config.style_layers),
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
        pooling=config.pooling,
        precision=precision,
    )
