"""The optimisers of a stylization behind one protocol: Adam on one device, Adam across replicas, and L-BFGS-B.

An engine holds the images being optimised (preprocessed, [N, H, W, 3]) and its optimiser state, and takes a loss
callable ``loss(images, **params) -> {"total": [N], ...}``, where ``params`` are per-image arrays (e.g. each
candidate's blend and style weight) that a replicated engine splits with the images. Engines know nothing of the
objective or of the loop that drives them: :mod:`neural_style.stylization` calls :meth:`Engine.step` and reads
:meth:`Engine.evaluate` and :meth:`Engine.images`, never asking which engine it has.

Every engine computes its gradient with :func:`neural_style.gradients.value_and_gradient`, the one GradientTape
of the project, compiled by :func:`neural_style.gradients.compile_loss`; a loss that evaluates itself piece by piece
(:class:`neural_style.tiling.TiledObjective`, for images larger than memory allows) brings its own evaluation and
gradient, which run eagerly, tile after tile. Adam's update rule is the pure :meth:`Adam.update`, so the
single-device and replicated engines step identically.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import tensorflow as tf

from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.gradients import LossFn, ValueAndGradient, compile_loss, is_piecewise, value_and_gradient
from neural_style.lbfgs import DeviceLbfgsEngine
from neural_style.resizable import resizable, resizable_spec

__all__ = [
    "Adam",
    "AdamEngine",
    "Engine",
    "LbfgsEngine",
    "ReplicatedAdamEngine",
    "make_engine",
]


class Adam(tf.Module):
    """Adam with TF/Keras's update rule: var -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)."""

    def __init__(
        self,
        variable: tf.Variable | None,
        learning_rate: float = 1e1,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Args:
        variable: the variable :meth:`apply` steps (its moments live here), or None to use :meth:`update` only.
        learning_rate, beta1, beta2, epsilon: Adam's settings.
        bounds: (lower, upper), broadcastable to the variable: each step ends by clipping to them (projected Adam),
            or None to leave the values unbounded (neural-style's Adam).
        """
        super().__init__(name="adam")
        self.bounds = None if bounds is None else tuple(np.asarray(b, np.float32) for b in bounds)
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        if variable is not None:  # without a variable only the pure update() is used
            # Shaped like the variable: when its size may change, so may theirs.
            self.m = tf.Variable(tf.zeros_like(variable), trainable=False, name="m", shape=variable.shape)
            self.v = tf.Variable(tf.zeros_like(variable), trainable=False, name="v", shape=variable.shape)

    def update(
        self, value: tf.Tensor, gradient: tf.Tensor, m: tf.Tensor, v: tf.Tensor, t: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The update rule as a pure function: step ``t`` (1-based, float) -> (new value, new m, new v)."""
        # 1 - beta in the variable's precision, like beta^t: in float64 it would not cancel the bias correction
        # exactly, and every step would come out slightly short of TF/Keras's.
        beta1 = tf.constant(self.beta1, value.dtype)
        beta2 = tf.constant(self.beta2, value.dtype)
        m = beta1 * m + (1.0 - beta1) * gradient
        v = beta2 * v + (1.0 - beta2) * tf.square(gradient)
        alpha = self.learning_rate * tf.sqrt(1.0 - tf.pow(beta2, t)) / (1.0 - tf.pow(beta1, t))
        value = value - alpha * m / (tf.sqrt(v) + self.epsilon)
        if self.bounds is not None:
            value = tf.clip_by_value(value, *self.bounds)
        return value, m, v

    def apply(self, gradient: tf.Tensor, variable: tf.Variable) -> None:
        """One step on ``variable`` (the one given at construction), keeping the moments in this module."""
        t = tf.cast(self.step.assign_add(1), tf.float32)
        value, m, v = self.update(variable, gradient, self.m, self.v, t)
        self.m.assign(m)
        self.v.assign(v)
        variable.assign(value)


class Engine(Protocol):
    """Holds the images being optimised and the optimiser's state on the device(s)."""

    finished: bool  # the optimiser ended by itself (only L-BFGS does)

    @property
    def start_losses(self) -> dict[str, np.ndarray] | None:
        """Every loss term ([N] each) of the start images, known once the first step has evaluated them; else None."""
        ...

    @property
    def evaluations(self) -> int | None:
        """Loss evaluations so far when a step may take several (L-BFGS), else None."""
        ...

    @property
    def state(self) -> tf.train.Checkpoint | None:
        """Everything a saved run needs to continue exactly (a ``tf.train.Checkpoint``), or None if not saveable."""
        ...

    def step(self) -> dict[str, np.ndarray]:
        """One optimisation step; returns loss terms ([N] each, at least "total") it computed on its way."""
        ...

    def evaluate(self, images: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The weighted loss terms, [N] each, of the current images or of ``images`` [N, H, W, 3] (preprocessed)."""
        ...

    def images(self) -> np.ndarray:
        """The current images, preprocessed, [N, H, W, 3]."""
        ...

    def close(self) -> None:
        """Releases what the engine holds beyond its tensors (L-BFGS's worker thread)."""
        ...

    def reset(self, start: np.ndarray) -> None:
        """Starts again from ``start`` [N, H, W, 3] (preprocessed; N as the first start's, any height and width)
        with a fresh optimiser state, keeping the compiled steps. New targets come with it when the loss reads them
        from variables that the caller has assigned (as video frames and the stages of coarse-to-fine do), so
        nothing is traced again."""
        ...


def _numpy(terms: Mapping[str, tf.Tensor]) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in terms.items()}


def _apply_step(terms_and_gradient: ValueAndGradient, adam: Adam, image: tf.Variable) -> Mapping[str, tf.Tensor]:
    terms, gradient = terms_and_gradient(image)
    adam.apply(gradient, image)
    return terms


class AdamEngine:
    """All images as one batch on the default device: one compiled step updates a variable in place."""

    finished = False
    evaluations = None

    def __init__(
        self,
        loss: LossFn,
        start: np.ndarray,
        params: Mapping[str, np.ndarray],
        settings: Sequence[float] = (1e1, 0.9, 0.999, 1e-8),
        *,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
        jit_compile: bool = False,
    ) -> None:
        """Args:
        loss: ``loss(images, **params)`` -> terms.
        start: [N, H, W, 3] preprocessed start images.
        params: per-image arrays passed to ``loss``.
        settings: Adam's learning rate, beta1, beta2 and epsilon.
        bounds: (lower, upper) pixel bounds to clip to after every step (projected Adam), or None.
        jit_compile: compile the step with XLA.
        """
        self.image = resizable(start, name="image")  # one traced step serves every size (reset)
        learning_rate, beta1, beta2, epsilon = settings
        self.optimizer = Adam(self.image, learning_rate, beta1, beta2, epsilon, bounds=bounds)
        image, adam = self.image, self.optimizer
        self._evaluate, terms_and_gradient = compile_loss(
            loss, params, jit_compile=jit_compile, images=resizable_spec(start)
        )
        self._step: Callable[[], Mapping[str, tf.Tensor]]
        if is_piecewise(loss):  # the gradient comes piece by piece from Python; the update is compiled
            apply = tf.function(lambda gradient: adam.apply(gradient, image), autograph=False)

            def piecewise_step() -> Mapping[str, tf.Tensor]:
                terms, gradient = terms_and_gradient(image.value())
                apply(gradient)
                return terms

            self._step = piecewise_step
        else:  # gradient and update in one compiled step
            self._step = tf.function(
                lambda: _apply_step(terms_and_gradient, adam, image), jit_compile=jit_compile, autograph=False
            )
        self.start_losses: dict[str, np.ndarray] | None = None

    @property
    def state(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(image=self.image, optimizer=self.optimizer)

    def step(self) -> dict[str, np.ndarray]:
        terms = _numpy(self._step())
        if self.start_losses is None:  # the first step evaluated the start images on its way
            self.start_losses = terms
        return terms

    def evaluate(self, images: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return _numpy(self._evaluate(self.image.value() if images is None else tf.constant(images, tf.float32)))

    def images(self) -> np.ndarray:
        return self.image.numpy()

    def close(self) -> None:
        """Nothing to release."""

    def reset(self, start: np.ndarray) -> None:
        self.image.assign(start)
        adam = self.optimizer  # moments and step count: Adam starts afresh
        adam.m.assign(tf.zeros_like(start))
        adam.v.assign(tf.zeros_like(start))
        adam.step.assign(0)
        self.start_losses = None


class ReplicatedAdamEngine:
    """Images split across the replicas of a ``tf.distribute`` strategy, each replica optimising its share.

    The network's weights are mirrored (the loss must be built in the strategy's scope); each replica keeps its own
    images, per-image params and Adam moments as per-replica values, so no gradients are exchanged between devices.
    Losses and images are gathered from every replica, those of other machines too under
    ``MultiWorkerMirroredStrategy``, where every worker must then make the same calls in the same order.
    """

    finished = False
    evaluations = None
    state = None

    def __init__(
        self,
        loss: LossFn,
        start: np.ndarray,
        params: Mapping[str, np.ndarray],
        optimizer: Adam,
        strategy: tf.distribute.Strategy,
    ) -> None:
        if is_piecewise(loss):
            raise NeuralStyleError(
                "tiles (--tile_size, --max_memory) are evaluated on one device; do not split the run across devices "
                "or workers (--devices, TF_CONFIG)"
            )
        replicas = strategy.num_replicas_in_sync
        n = start.shape[0]
        if n < replicas:
            raise NeuralStyleError(f"{n} image(s) cannot be split over {replicas} devices; use fewer devices")
        bounds = np.linspace(0, n, replicas + 1).round().astype(int)
        self._strategy = strategy

        def split(values: np.ndarray) -> Any:
            parts = [values[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: tf.constant(parts[ctx.replica_id_in_sync_group])
            )

        self._images = split(start)
        self._m = split(np.zeros_like(start))
        self._v = split(np.zeros_like(start))
        self._params = {key: split(np.asarray(value)) for key, value in params.items()}
        self._split = split
        self._t = 0
        self.start_losses: dict[str, np.ndarray] | None = None

        def replica_step(images, m, v, t, params):
            terms, gradient = value_and_gradient(lambda: loss(images, **params), images)
            images, m, v = optimizer.update(images, gradient, m, v, t)
            return images, m, v, terms

        self._step = tf.function(lambda *args: strategy.run(replica_step, args=args), autograph=False)
        self._evaluate = tf.function(
            lambda images, params: strategy.run(lambda x, p: loss(x, **p), (images, params)), autograph=False
        )

    def _gather(self, value: Any) -> np.ndarray:
        # Every replica's part in replica order, from every worker of a multi-worker strategy (a collective there).
        return self._strategy.gather(value, axis=0).numpy()

    def step(self) -> dict[str, np.ndarray]:
        self._t += 1
        self._images, self._m, self._v, terms = self._step(
            self._images, self._m, self._v, tf.constant(self._t, tf.float32), self._params
        )
        gathered = {key: self._gather(value) for key, value in terms.items()}
        if self.start_losses is None:  # the first step evaluated the start images on its way
            self.start_losses = gathered
        return gathered

    def evaluate(self, images: np.ndarray | None = None) -> dict[str, np.ndarray]:
        terms = self._evaluate(self._images if images is None else self._split(images), self._params)
        return {key: self._gather(value) for key, value in terms.items()}

    def images(self) -> np.ndarray:
        return self._gather(self._images)

    def close(self) -> None:
        """Nothing to release."""

    def reset(self, start: np.ndarray) -> None:
        self._images = self._split(start)
        self._m = self._split(np.zeros_like(start))
        self._v = self._split(np.zeros_like(start))
        self._t = 0
        self.start_losses = None


_DONE = object()


class LbfgsEngine:
    """L-BFGS-B (scipy) within pixel bounds, driven one iteration at a time; one image.

    The reference of the tests and benchmarks for :class:`neural_style.lbfgs.DeviceLbfgsEngine`, which
    ``--optimizer lbfgs`` runs (:func:`make_engine`): that one keeps its history on the device and in the saved state.

    ``scipy.optimize.minimize`` owns its loop; it runs on a worker thread that hands each accepted iterate over
    through a queue and waits until the next iteration is asked for, so the caller can report progress and stop
    whenever it likes. One :meth:`step` is one L-BFGS iteration, which may evaluate the loss several times (line
    search); :attr:`evaluations` counts them. When scipy ends on its own (e.g. the line search cannot make
    progress), :attr:`finished` becomes true. float64 is used only at the scipy boundary.

    Its :attr:`state` holds the current image and the evaluation count: a restored engine continues from the saved
    image with an empty history (scipy's correction pairs cannot be handed back to it), so its next iterations
    rebuild the curvature estimate as the first ones of a run do.
    """

    def __init__(
        self,
        loss: LossFn,
        start: np.ndarray,
        params: Mapping[str, np.ndarray],
        *,
        lower: np.ndarray,
        upper: np.ndarray,
        memory: int = 10,
        max_iterations: int = 1000,
        jit_compile: bool = False,
    ) -> None:
        """Prepares the optimisation; nothing runs until the first :meth:`step`.

        Args:
            loss: ``loss(images, **params)`` -> terms.
            start: [1, H, W, 3] float32 start image (preprocessed).
            params: per-image arrays passed to ``loss``.
            lower, upper: [3] per-channel bounds of the pixels (preprocessed), e.g. -mean and 255 - mean.
            memory: number of correction pairs kept (scipy's ``maxcor``).
            max_iterations: most iterations scipy is allowed.
            jit_compile: compile the loss and gradient with XLA.
        """
        if start.shape[0] != 1:
            raise NeuralStyleError("L-BFGS optimises one image at a time; sweep with Adam or one image per batch")
        self._x = np.asarray(start, np.float32)
        self._image = resizable(self._x, name="image")
        self._evaluations = tf.Variable(0, dtype=tf.int64, trainable=False, name="evaluations")
        self._limits = (np.asarray(lower, np.float64), np.asarray(upper, np.float64))
        self._size(start.shape)
        self._options = {"maxcor": memory, "maxiter": max_iterations, "maxfun": 50 * max_iterations}
        self.finished = False
        self._iterates: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._resume: queue.Queue[bool] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        self._evaluate, self._value_and_gradient = compile_loss(
            loss, params, jit_compile=jit_compile, images=resizable_spec(start)
        )
        self.start_losses: dict[str, np.ndarray] | None = None

    def _size(self, shape: tuple[int, ...]) -> None:
        """Sets the image shape (the bounds are per pixel for scipy)."""
        import scipy.optimize

        lower, upper = self._limits
        self._shape = shape
        self._bounds = scipy.optimize.Bounds(
            np.broadcast_to(lower, shape).ravel(), np.broadcast_to(upper, shape).ravel()
        )

    @property
    def evaluations(self) -> int:
        """Loss and gradient evaluations so far (over the saved run too, after a restore)."""
        return int(self._evaluations.numpy())

    @property
    def state(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(image=self._image, evaluations=self._evaluations)

    def _fun(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self._evaluations.assign_add(1)
        terms, gradient = self._value_and_gradient(tf.constant(x.reshape(self._shape), tf.float32))
        if self.start_losses is None:  # scipy evaluates the start first
            self.start_losses = _numpy(terms)
        return float(terms["total"][0]), gradient.numpy().astype(np.float64).ravel()

    def _callback(self, intermediate_result: Any) -> None:
        self._iterates.put((intermediate_result.x.astype(np.float32), float(intermediate_result.fun)))
        if not self._resume.get():
            raise StopIteration  # scipy ends the minimisation cleanly

    def _run(self) -> None:
        import scipy.optimize

        try:
            scipy.optimize.minimize(
                self._fun,
                self._x.astype(np.float64).ravel(),  # the start, or the image a restored state holds
                jac=True,
                method="L-BFGS-B",
                bounds=self._bounds,
                callback=self._callback,
                # ftol and gtol 0: the caller decides when to stop (iterations, a target loss, a tolerance)
                options={**self._options, "ftol": 0.0, "gtol": 0.0},
            )
        except BaseException as e:  # handed to the caller's thread
            self._iterates.put(e)
            return
        self._iterates.put(_DONE)

    def step(self) -> dict[str, np.ndarray]:
        """Runs one L-BFGS iteration; returns {"total": [1]} at the new image (all terms if scipy ended)."""
        if self.finished:
            return self.evaluate()
        if self._thread is None:
            self._x = self._image.numpy()  # a restore may have replaced the start
            self._thread = threading.Thread(target=self._run, name="lbfgs", daemon=True)
            self._thread.start()
        else:
            self._resume.put(True)
        item = self._iterates.get()
        if isinstance(item, BaseException):
            self.finished = True
            raise item
        if item is _DONE:
            self.finished = True
            return self.evaluate()
        x, value = item
        self._x = x.reshape(self._shape)
        self._image.assign(self._x)
        return {"total": np.array([value], np.float32)}

    def evaluate(self, images: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return _numpy(self._evaluate(tf.constant(self._x if images is None else images, tf.float32)))

    def images(self) -> np.ndarray:
        return self._x.copy()

    def close(self) -> None:
        """Ends the worker thread if it is waiting for another iteration."""
        if self._thread is not None and self._thread.is_alive() and not self.finished:
            self._resume.put(False)
            self._thread.join()
        self.finished = True

    def reset(self, start: np.ndarray) -> None:
        """Ends the current minimisation; the next :meth:`step` starts a new one from ``start`` with no history."""
        self.close()
        self._thread = None
        self._iterates = queue.Queue(maxsize=1)  # the ended minimisation may have left its last word here
        self._resume = queue.Queue(maxsize=1)
        self._x = np.asarray(start, np.float32)
        if self._x.shape != self._shape:
            self._size(self._x.shape)
        self._image.assign(self._x)
        self._evaluations.assign(0)
        self.finished = False
        self.start_losses = None


def make_engine(
    loss: LossFn,
    start: np.ndarray,
    params: Mapping[str, np.ndarray],
    config: StyleConfig,
    *,
    bounds: tuple[np.ndarray, np.ndarray] | Sequence[np.ndarray],
    strategy: tf.distribute.Strategy | None = None,
) -> Engine:
    """The engine of ``config.optimizer``, on one device or across ``strategy``'s replicas.

    Args:
        loss: ``loss(images, **params)`` -> terms.
        start: [N, H, W, 3] preprocessed start images.
        params: per-image arrays passed to ``loss``.
        config: the optimiser's settings (optimizer, Adam's, L-BFGS's, clip, iterations, xla).
        bounds: (lower, upper) [3] pixel bounds in the preprocessed space (L-BFGS keeps to them, and Adam with
            ``config.clip``).
        strategy: a ``tf.distribute`` strategy with several replicas, or None for the default device.
    """
    replicated = strategy is not None and strategy.num_replicas_in_sync > 1
    if config.optimizer == "lbfgs":
        if replicated:
            raise NeuralStyleError("L-BFGS runs on one device; do not split it across devices")

        lower, upper = bounds
        return DeviceLbfgsEngine(
            loss, start, params, lower=lower, upper=upper, memory=config.lbfgs_memory, jit_compile=config.xla
        )
    settings = (config.learning_rate, config.beta1, config.beta2, config.epsilon)
    clip = (bounds[0], bounds[1]) if config.clip else None
    if replicated:
        assert strategy is not None
        return ReplicatedAdamEngine(loss, start, params, Adam(None, *settings, bounds=clip), strategy)
    return AdamEngine(loss, start, params, settings, bounds=clip, jit_compile=config.xla)
