"""The ``neural-style-export`` command: the VGG feature extractor of a network file, for other pipelines.

``neural-style-export --network FILE --output_dir DIR`` writes the feature extractor (RGB 0..255 in,
``{layer: activation}`` out) as a SavedModel (``DIR/saved_model``, needs only TensorFlow), a Keras file
(``DIR/vgg_features.keras``, needs ``import neural_style.vgg`` before ``keras.models.load_model``) and
``DIR/export.json`` (source file, MD5, layers, pooling, mean pixel). Neither needs the ``.mat`` file again. Every input
is checked before TensorFlow is imported; the directory is written completely or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from absl import flags

from neural_style.atomic import umask_mode
from neural_style.cli.command import (
    Command,
    check_directory_target,
    define_network,
    network_path,
    require,
    start_tensorflow,
)
from neural_style.config import EXPORT_LAYERS, POOLING
from neural_style.errors import NeuralStyleError

__all__ = ["KERAS_FILE", "METADATA_FILE", "SAVED_MODEL_DIR", "check_output_dir", "flag_values", "install_dir", "main"]

KERAS_FILE = "vgg_features.keras"
SAVED_MODEL_DIR = "saved_model"
METADATA_FILE = "export.json"

_USAGE = """Usage: neural-style-export --network FILE --output_dir DIR [--layers L1,L2,...] [--pooling max|avg]

Writes the VGG feature extractor (RGB images in 0..255 -> {layer: activation}) as DIR/saved_model (a TensorFlow
SavedModel, signature serving_default) and DIR/vgg_features.keras, with DIR/export.json describing them. Neither
needs the .mat file to load. DIR is written completely or not at all.
"""


def flag_values() -> flags.FlagValues:
    """The flags of ``neural-style-export``, on a fresh FlagValues."""
    fv = flags.FlagValues()
    define_network(fv, __name__)
    flags.DEFINE_string(
        "output_dir", None, "Directory to create with the SavedModel, the .keras file and export.json.", flag_values=fv
    )
    flags.DEFINE_list(
        "layers",
        list(EXPORT_LAYERS),
        "Layers the exported model returns, comma-separated, or 'all' (default: neural-style's style and content "
        "layers).",
        flag_values=fv,
    )
    flags.DEFINE_enum("pooling", "max", list(POOLING), "Pooling layers: max or avg.", flag_values=fv)
    flags.DEFINE_boolean("overwrite", False, "Replace --output_dir when it holds an earlier export.", flag_values=fv)
    return fv


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``neural-style-export``; ``argv`` defaults to ``sys.argv``."""
    fv = flag_values()
    Command("neural-style-export", fv, _USAGE, __name__).run(argv, lambda _: _export(fv))


def check_output_dir(path: str, overwrite: bool) -> list[str]:
    """Refuses a file (or an ancestor that is one), a place that is not writable, and a non-empty directory unless
    it is an earlier export.

    Returns:
        The missing directories of ``path``, outermost first (see :func:`check_directory_target`): the export creates
        its missing parents and removes them again when it fails.
    """
    missing = check_directory_target(path, "output_dir")
    parent = os.path.dirname(os.path.abspath(path))
    if not missing and not os.access(parent, os.W_OK | os.X_OK):  # the directory is replaced by renames in parent
        raise NeuralStyleError(f"--output_dir: the directory {parent} is not writable; choose another location")
    if os.path.isdir(path) and os.listdir(path):
        if not os.path.isfile(os.path.join(path, METADATA_FILE)):
            raise NeuralStyleError(
                f"--output_dir {path} is not empty and holds no earlier export; choose a new or empty directory"
            )
        if not overwrite:
            raise NeuralStyleError(f"--output_dir {path} already holds an export; pass --overwrite or move it")
    return missing


def install_dir(tmp: str, path: str) -> None:
    """Puts the finished directory ``tmp`` at ``path`` by renames, so ``path`` is never half-written."""
    if not os.path.isdir(path) or not os.listdir(path):
        os.replace(tmp, path)  # a missing or empty directory is replaced in one step
        return
    old = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".old-export-")
    os.rmdir(old)
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove_directories(created: list[str]) -> None:
    """Removes the directories a failed export created (innermost first), those that are still empty."""
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except OSError:
            return


def _write_saved_model(model: Any, path: str) -> None:
    """Writes ``model`` as a SavedModel with the endpoint ``serve`` and the signature ``serving_default``.

    Not ``model.export``: in Keras 3 it stores every variable twice (the Keras wrappers it tracks and the
    ``tf.Variable``s the traced function captures; keras-team/keras#23553), doubling the file and the memory of
    whoever loads it. Tracking the ``tf.Variable``s themselves lets TensorFlow store each once.
    """
    import tensorflow as tf

    module = tf.Module()
    module.vgg_variables = [weight.value for weight in model.weights]  # the tf.Variables inside the Keras wrappers

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="image")])
    def serve(image: Any) -> Any:
        return model(image, training=False)

    module.serve = serve
    tf.saved_model.save(module, path, signatures={"serving_default": serve})


def _write_export(model: Any, directory: str, metadata: dict[str, object]) -> None:
    """Writes the Keras file, the SavedModel and ``export.json`` into ``directory``."""
    model.save(os.path.join(directory, KERAS_FILE))
    _write_saved_model(model, os.path.join(directory, SAVED_MODEL_DIR))
    with open(os.path.join(directory, METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")


def _export(fv: flags.FlagValues) -> None:
    output_dir = require(fv, "output_dir", "the directory to write the exported model to")
    missing = check_output_dir(output_dir, fv.overwrite)
    network = network_path(fv)

    from neural_style.matconvnet import default_cache_dir, load_vgg

    vgg = load_vgg(network, cache_dir=default_cache_dir())
    layers = list(vgg.layer_names) if fv.layers == ["all"] else list(fv.layers)
    unknown = [layer for layer in layers if layer not in vgg.layer_names]
    if unknown or not layers:
        raise NeuralStyleError(
            f"--layers: {', '.join(unknown) or 'none given'} not in {network}; it has {', '.join(vgg.layer_names)}"
        )

    start_tensorflow()
    from neural_style.vgg import feature_extractor

    model = feature_extractor(vgg, layers, pooling=fv.pooling)
    metadata = {
        "source": os.path.abspath(network),
        "md5": vgg.md5,
        "layers": layers,
        "pooling": fv.pooling,
        "mean_pixel": [float(v) for v in vgg.mean_pixel],
        "input": "float32 [N, H, W, 3] RGB in 0..255 (the model subtracts the mean pixel)",
        "outputs": "{layer: float32 [N, H', W', C]}",
        "keras": KERAS_FILE,
        "saved_model": SAVED_MODEL_DIR,
    }
    parent = os.path.dirname(os.path.abspath(output_dir))
    try:
        os.makedirs(parent, exist_ok=True)  # the missing parents of --output_dir, checked to be creatable
        tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
        try:
            _write_export(model, tmp, metadata)
            os.chmod(tmp, umask_mode(0o777))  # mkdtemp makes it private; the export is an ordinary directory
            install_dir(tmp, output_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as e:
        _remove_directories(missing)
        if isinstance(e, OSError):
            raise NeuralStyleError(
                f"could not write --output_dir {output_dir}: {e.strerror or e}", usage=False
            ) from None
        raise
    print(f"Wrote {os.path.join(output_dir, SAVED_MODEL_DIR)} and {os.path.join(output_dir, KERAS_FILE)}")
    print(f"  from {network} (MD5 {vgg.md5}), pooling {fv.pooling}, layers {','.join(layers)}")
