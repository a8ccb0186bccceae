"""Neural style transfer (Gatys et al.) on MatConvNet VGG networks, in TensorFlow 2 / Keras 3.

The public API is re-exported here, each name from the one module that defines it (``_HOMES``). Importing the
package does nothing else: TensorFlow is imported only when a name that needs it is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

# {module: the public names it defines}; __all__ is made from this, so the two cannot disagree.
_HOMES: dict[str, tuple[str, ...]] = {
    "errors": ("NeuralStyleError", "NonFiniteLossError"),
    "config": ("CONTENT_LAYERS", "STYLE_LAYERS", "Candidate", "StyleConfig", "TemporalConfig", "TrainConfig"),
    "matconvnet": ("Layer", "VggWeights", "load_vgg", "read_matconvnet"),
    "vgg": ("VggFeatures", "feature_extractor", "preprocess", "unprocess"),
    "losses": (
        "content_loss",
        "gram_matrix",
        "guided_gram_matrix",
        "style_loss",
        "temporal_loss",
        "tv_loss",
    ),
    "objective": ("Objective",),
    "engines": ("Adam",),
    "tiling": ("TiledImages", "TiledObjective", "Tiling"),
    "progress": ("Progress",),
    "stylization": ("Stylization", "build_objective", "stylize", "sweep", "sweep_runs"),
    "scoring": ("score_images",),
    "run_state": ("RunState",),
    "perceptual": ("ContentLoss", "PerceptualLoss", "StyleLoss", "TotalVariationLoss"),
    "color": ("match_color_histogram", "preserve_colors"),
    "regions": ("Regions",),
    "image_io": ("read_image", "write_image"),
    "transformer": ("apply_transformer", "build_transformer", "load_transformer", "save_transformer"),
    "train": ("TrainProgress", "Trainer", "make_dataset", "scan_images"),
    "classify": ("ImageNetClassifier", "top_k"),
    "video": ("VideoInfo", "VideoWriter", "probe_video", "read_frames"),
    "flow": ("consistency_mask", "optical_flow", "temporal_guide", "warp"),
    "temporal": ("TemporalObjective", "stylize_clip", "stylize_frames"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    if name not in _HOME_OF:
        raise AttributeError(f"module 'neural_style' has no attribute '{name}'")
    return getattr(importlib.import_module(f"neural_style.{_HOME_OF[name]}"), name)


def __dir__() -> list[str]:
    return list(__all__)
