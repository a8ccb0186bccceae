"""L-BFGS on the device: a projected limited-memory BFGS whose history, recursion and line search are TensorFlow ops.

:class:`Lbfgs` minimises B independent problems at once (a batch of images [B, H, W, 3], one history per image)
within per-channel bounds, with everything in ``tf.Variable`` s of float32: the iterate x, its loss f and gradient g,
and the last ``memory`` correction pairs s = x_{k+1} - x_k, y = g_{k+1} - g_k of each image in a ring. One
:meth:`Lbfgs.iterate` is one L-BFGS iteration:

1. the projected gradient: zero where a pixel rests on a bound and the gradient pushes it outwards (the bound is
   active there, as L-BFGS-B's active set);
2. the search direction d = -H g by the two-loop recursion over the image's pairs, H_0 = (s.y / y.y) I from its
   newest pair; zero on the active pixels; the steepest descent when that is not a descent direction;
3. a line search along the projected path x(t) = clip(x + t d) (the bounds are kept by projection): the first trial
   is t = 1 (with a history; without one, a step that moves the pixels by one grey level in root mean square), then
   bracketing for the weak Wolfe conditions, f(x(t)) <= f + c1 g.(x(t) - x) and g(x(t)).(x(t) - x) >= c2 g.(x(t) - x):
   too long -> a safeguarded quadratic interpolation or bisection, too short -> 4 t or bisection (a step at which
   every moving pixel rests on its bound counts as long enough: longer ones give the same point); at most
   ``max_evaluations`` evaluations, keeping the lowest point with sufficient decrease when the curvature condition
   is not met in time; each image's search stops on its own and then stays at its point while the others go on;
4. the pair (s, y) stored when its curvature is what a Wolfe step guarantees, s.y >= (1 - c2) |g.s| (skipped
   otherwise: L-BFGS-B skips s.y <= 0; a step kept for its decrease alone may measure only the noise of, e.g.,
   bfloat16 gradients); an image whose search found no strict decrease forgets its history and tries again from
   the steepest descent, and has converged when it had none to forget.

When the loss is traced into TensorFlow (:func:`neural_style.gradients.compile_loss`), the whole iteration, every loss
evaluation of its line search included, is one compiled ``tf.function``: no evaluation returns to Python or copies
the image or the gradient to the host. A loss that evaluates itself tile by tile from Python (a piecewise loss) runs
the same code eagerly: its control flow then reads one boolean per evaluation, and the vectors stay on the device.

:class:`DeviceLbfgsEngine` drives it behind :class:`neural_style.engines.Engine`; its saved state (:attr:`state`)
holds the history, so a restored run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from neural_style.gradients import LossFn, ValueAndGradient, compile_loss, is_piecewise
from neural_style.resizable import resizable, resizable_spec

__all__ = ["DeviceLbfgsEngine", "Lbfgs"]

LineSearch = dict[str, tf.Tensor]

# The phases of an iteration's evaluation loop: the line search, one more evaluation at the final steps, the end.
SEARCHING, REVISITING, FINISHED = 0, 1, 2

# A stored pair needs s.y > CURVATURE_EPS * y.y: s.y at the float32 rounding level of y.y says nothing of the curvature.
CURVATURE_EPS = 1e-6


def _axes(x: tf.Tensor) -> list[int]:
    """The axes of a [B, ...] tensor past the batch."""
    return list(range(1, x.shape.rank))


def _dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Per-image inner products of [B, ...] tensors: [B]."""
    return tf.reduce_sum(a * b, axis=_axes(a))


def _per_image(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """[B] values shaped to broadcast against a [B, ...] tensor."""
    return tf.reshape(values, [-1] + [1] * (like.shape.rank - 1))


class Lbfgs(tf.Module):
    """Projected L-BFGS for a batch of independent problems, its state in variables (see the module).

    Args:
        start: [B, ...] float32 start values.
        lower, upper: bounds broadcastable to ``start`` (e.g. [3] per channel), or None for unbounded.
        memory: correction pairs kept per image (m).
        max_evaluations: most loss evaluations of one line search.
        c1, c2: the sufficient-decrease and curvature constants of the weak Wolfe conditions.
    """

    def __init__(
        self,
        start: np.ndarray,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
        *,
        memory: int = 10,
        max_evaluations: int = 20,
        c1: float = 1e-4,
        c2: float = 0.9,
    ) -> None:
        super().__init__(name="lbfgs")
        if memory < 1:
            raise ValueError(f"memory is {memory}; it must be at least 1")
        start = np.asarray(start, np.float32)
        batch = start.shape[0]
        self.memory = memory
        self.max_evaluations = max_evaluations
        self.c1, self.c2 = c1, c2
        self._lower = None if lower is None else tf.constant(np.asarray(lower, np.float32))
        self._upper = None if upper is None else tf.constant(np.asarray(upper, np.float32))
        # x, g and the pairs may change size (:meth:`reset`): one traced iteration serves every size.
        self.x = resizable(self._clip(tf.constant(start)), name="x")
        self.f = tf.Variable(tf.zeros([batch]), trainable=False, name="f")
        self.g = resizable(tf.zeros_like(start), name="g")
        self.s = resizable(tf.zeros((memory, *start.shape)), name="s", lead=2)
        self.y = resizable(tf.zeros((memory, *start.shape)), name="y", lead=2)
        self.rho = tf.Variable(tf.zeros([memory, batch]), trainable=False, name="rho")  # 1 / s.y of each pair
        self.gamma = tf.Variable(tf.ones([batch]), trainable=False, name="gamma")  # H_0 = gamma I
        self.head = tf.Variable(tf.zeros([batch], tf.int32), trainable=False, name="head")  # next slot to write
        self.count = tf.Variable(tf.zeros([batch], tf.int32), trainable=False, name="count")  # pairs stored
        self.converged = tf.Variable(tf.zeros([batch], tf.bool), trainable=False, name="converged")
        self.started = tf.Variable(False, trainable=False, name="started")  # f and g are those of x
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.evaluations = tf.Variable(0, dtype=tf.int64, trainable=False, name="evaluations")

    # ------------------------------------------------------------------------------------------ the pieces

    def _clip(self, x: tf.Tensor) -> tf.Tensor:
        if self._lower is not None:
            x = tf.maximum(x, self._lower)
        if self._upper is not None:
            x = tf.minimum(x, self._upper)
        return x

    def _active(self) -> tf.Tensor:
        """Where a bound is active: the pixel rests on it and the gradient points outwards (bool, x's shape)."""
        x, g = self.x, self.g
        active = tf.zeros_like(x, tf.bool)
        if self._lower is not None:
            active = active | ((x <= self._lower) & (g > 0))
        if self._upper is not None:
            active = active | ((x >= self._upper) & (g < 0))
        return active

    def _slots(self, newest: tf.Tensor) -> tf.Tensor:
        """[B, 2] indices into the history of each image's ``newest``-th newest pair (0: the newest)."""
        batch = tf.shape(self.head)[0]
        slot = tf.math.floormod(self.head - 1 - newest, self.memory)
        return tf.stack([slot, tf.range(batch)], axis=1)

    def _two_loop(self, gradient: tf.Tensor) -> tf.Tensor:
        """H gradient by the two-loop recursion over each image's stored pairs (the identity without any)."""
        count = self.count.value()

        def pair(i: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            """(s, y, rho) of the i-th newest pair; rho 0 where an image has fewer pairs. Read anew at each use, so
            that no pair is held between the two loops."""
            index = self._slots(tf.constant(i))
            rho = tf.where(i < count, tf.gather_nd(self.rho, index), 0.0)
            return tf.gather_nd(self.s, index), tf.gather_nd(self.y, index), rho

        q, alphas = gradient, []
        for i in range(self.memory):  # newest first
            s, y, rho = pair(i)
            alphas.append(rho * _dot(s, q))
            q = q - _per_image(alphas[i], q) * y
        r = _per_image(tf.where(count > 0, self.gamma, 1.0), q) * q
        for i in reversed(range(self.memory)):  # oldest first
            s, y, rho = pair(i)
            r = r + _per_image(alphas[i] - rho * _dot(y, r), r) * s
        return r

    def _direction(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(d, the first trial step [B], whether an image has nowhere to go [B])."""
        active = self._active()
        gradient = tf.where(active, 0.0, self.g)
        d = tf.where(active, 0.0, -self._two_loop(gradient))
        descent = _dot(d, gradient) < 0
        d = tf.where(_per_image(descent, d), d, -gradient)
        fresh = ~descent | (self.count == 0)
        # Without curvature information, a step of one grey level (root mean square over the image's pixels).
        size = tf.cast(tf.reduce_prod(tf.shape(d)[1:]), d.dtype)
        rms = tf.sqrt(_dot(d, d) / size)
        first = tf.where(fresh, 1.0 / tf.maximum(rms, 1e-30), 1.0)
        stuck = ~tf.reduce_any(tf.not_equal(gradient, 0.0), axis=_axes(gradient))
        return d, first, stuck | self.converged

    def _limit(self, d: tf.Tensor) -> tf.Tensor:
        """[B] the step beyond which x(t) no longer changes: every moving pixel has reached its bound by then."""
        x, inf = self.x, tf.constant(np.inf, tf.float32)
        lower = self._lower if self._lower is not None else -inf
        upper = self._upper if self._upper is not None else inf
        up = tf.where(d > 0, (upper - x) / tf.where(d > 0, d, 1.0), 0.0)
        down = tf.where(d < 0, (lower - x) / tf.where(d < 0, d, -1.0), 0.0)
        return tf.reduce_max(tf.maximum(up, down), axis=_axes(x))

    def _trial(self, d: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        return self._clip(self.x + _per_image(t, d) * d)

    def _advance(self, d: tf.Tensor, search: LineSearch, total: tf.Tensor, gradient: tf.Tensor) -> LineSearch:
        """The line search after the evaluation at its trial steps ``search["t"]``: (loss [B], gradient)."""
        t, done = search["t"], search["done"]
        step = self._trial(d, t) - self.x
        slope0 = _dot(self.g, step)  # < 0 along a descent direction
        decrease = tf.math.is_finite(total) & (total <= self.f + self.c1 * slope0) & (total < self.f)
        # The curvature condition, or a step so long that every moving pixel rests on its bound (longer ones
        # would give the same point).
        flat = (_dot(gradient, step) >= self.c2 * slope0) | (t >= search["limit"])
        open_ = ~done
        accept = open_ & decrease & flat
        better = open_ & decrease & (total < search["best_f"])
        hi = tf.where(open_ & ~decrease, t, search["hi"])
        lo = tf.where(open_ & decrease & ~flat, t, search["lo"])
        bracketed = tf.math.is_finite(hi)
        # Too long: the minimum of the quadratic through f(0), f'(0) and f(t), kept within [0.1 t, 0.5 t].
        quadratic = -slope0 * t / (2.0 * (total - self.f - slope0))
        shrunk = tf.where(tf.math.is_finite(quadratic), tf.clip_by_value(quadratic, 0.1 * t, 0.5 * t), 0.5 * t)
        shorter = tf.where(lo > 0, 0.5 * (lo + hi), shrunk)
        longer = tf.where(bracketed, 0.5 * (lo + hi), tf.minimum(4.0 * t, search["limit"]))
        following = tf.where(decrease, longer, shorter)
        return {
            "t": tf.where(open_ & ~accept, following, t),
            "lo": lo,
            "hi": hi,
            "done": done | accept,
            "found": search["found"] | (open_ & decrease),
            "best_t": tf.where(better, t, search["best_t"]),
            "best_f": tf.where(better, total, search["best_f"]),
            "evaluations": search["evaluations"] + 1,
            "limit": search["limit"],
            "phase": search["phase"],
        }

    def _searched(self, search: LineSearch) -> LineSearch:
        """The phase after a turn of the line search: go on while an image is open and evaluations are left; else
        each image's final step (its accepted one; with none, its lowest point with sufficient decrease, or 0), to
        be evaluated again (:data:`REVISITING`) when one is not the step evaluated last."""
        going = tf.reduce_any(~search["done"]) & (search["evaluations"] < self.max_evaluations)
        done, found = search["done"], search["found"]
        final = tf.where(done, search["t"], tf.where(found, search["best_t"], 0.0))
        again = tf.reduce_any(~done & found & tf.not_equal(search["best_t"], search["t"]))
        return {
            **search,
            "t": tf.where(going, search["t"], final),
            "phase": tf.where(going, SEARCHING, tf.where(again, REVISITING, FINISHED)),
        }

    def _evaluate(
        self, value_and_gradient: ValueAndGradient, x: tf.Tensor
    ) -> tuple[Mapping[str, tf.Tensor], tf.Tensor]:
        self.evaluations.assign_add(1)
        return value_and_gradient(x)

    # ------------------------------------------------------------------------------------------ the steps

    def start(self, value_and_gradient: ValueAndGradient) -> Mapping[str, tf.Tensor]:
        """Evaluates the loss terms and gradient at x (the start); returns the terms ({"total": [B], ...})."""
        terms, gradient = self._evaluate(value_and_gradient, self.x.value())
        self.f.assign(terms["total"])
        self.g.assign(gradient)
        self.started.assign(True)
        return terms

    def iterate(self, value_and_gradient: ValueAndGradient) -> Mapping[str, tf.Tensor]:
        """One L-BFGS iteration (after :meth:`start`); returns {"total": [B]}, the loss of the new x.

        The loss is called at one place, in a loop whose every turn evaluates every image at its trial step: first
        the line search's turns; then, if an image's search ran out with its lowest point with sufficient decrease
        not the last one tried, one more turn at the final steps (the others are evaluated where they are, which
        gives their values again). One call of the loss keeps the traced graph a third of the size of one that
        evaluates the first trial and the last apart."""
        d, first, stuck = self._direction()
        infinite = tf.fill(tf.shape(first), np.float32(np.inf))
        zero = tf.zeros_like(first)
        limit = self._limit(d)
        search: LineSearch = {
            "t": tf.where(stuck, 0.0, tf.minimum(first, limit)),
            "lo": zero,
            "hi": infinite,
            "done": stuck,
            "found": tf.zeros_like(stuck),
            "best_t": zero,
            "best_f": infinite,
            "evaluations": tf.constant(0),
            "limit": limit,
            "phase": tf.constant(SEARCHING),
        }

        def going(search: LineSearch, total: tf.Tensor, gradient: tf.Tensor) -> tf.Tensor:
            return search["phase"] != FINISHED

        def evaluate_next(
            search: LineSearch, total: tf.Tensor, gradient: tf.Tensor
        ) -> tuple[LineSearch, tf.Tensor, tf.Tensor]:
            terms, gradient = self._evaluate(value_and_gradient, self._trial(d, search["t"]))
            total = terms["total"]
            search = tf.cond(
                search["phase"] == SEARCHING,
                lambda: self._searched(self._advance(d, search, total, gradient)),
                lambda: {**search, "phase": tf.constant(FINISHED)},
            )
            return search, total, gradient

        search, total, gradient = tf.while_loop(
            going, evaluate_next, (search, zero, tf.zeros_like(self.x)), parallel_iterations=1
        )
        t = search["t"]
        moved = t > 0
        x = tf.where(_per_image(moved, d), self._trial(d, t), self.x)
        gradient = tf.where(_per_image(moved, d), gradient, self.g)
        total = tf.where(moved, total, self.f)
        self._remember(x - self.x, gradient - self.g, moved, _dot(self.g, x - self.x))
        # No decrease found: forget the history and start again from the steepest descent; without a history to
        # forget, the image has converged (as far as float32 losses tell).
        failed = ~moved & ~stuck
        self.converged.assign(self.converged | stuck | (failed & (self.count == 0)))
        self.count.assign(tf.where(failed, 0, self.count))
        self.x.assign(x)
        self.g.assign(gradient)
        self.f.assign(total)
        self.iterations.assign_add(1)
        return {"total": total}

    def _remember(self, s: tf.Tensor, y: tf.Tensor, moved: tf.Tensor, slope0: tf.Tensor) -> None:
        """Stores (s, y) as each moved image's newest pair when its curvature is what a Wolfe step guarantees:
        s.y >= (1 - c2) |g.s| (a step kept for its decrease alone, the curvature condition unmet, may tell only
        noise, e.g. of bfloat16 gradients), and s.y above the rounding level of y.y."""
        sy, yy = _dot(s, y), _dot(y, y)
        keep = moved & (sy > CURVATURE_EPS * yy) & (sy > 0) & (sy >= (1.0 - self.c2) * -slope0)
        index = tf.boolean_mask(self._slots(tf.constant(-1)), keep)  # the slot after the newest: head
        self.s.scatter_nd_update(index, tf.boolean_mask(s, keep))
        self.y.scatter_nd_update(index, tf.boolean_mask(y, keep))
        self.rho.scatter_nd_update(index, tf.boolean_mask(1.0 / sy, keep))
        self.gamma.assign(tf.where(keep, sy / tf.where(keep, yy, 1.0), self.gamma))
        self.head.assign(tf.where(keep, tf.math.floormod(self.head + 1, self.memory), self.head))
        self.count.assign(tf.where(keep, tf.minimum(self.count + 1, self.memory), self.count))

    def reset(self, start: np.ndarray | tf.Tensor) -> None:
        """Starts again from ``start`` ([B, ...], of any height and width) with an empty history (e.g. for the next
        frame of a video, or the next stage of coarse-to-fine)."""
        start = tf.convert_to_tensor(start, tf.float32)
        if start.shape != self.x.value().shape:  # another size: the pairs of the old one are dropped
            self.g.assign(tf.zeros_like(start))
            self.s.assign(tf.zeros((self.memory, *start.shape)))
            self.y.assign(tf.zeros((self.memory, *start.shape)))
        self.x.assign(self._clip(start))
        self.count.assign(tf.zeros_like(self.count))
        self.head.assign(tf.zeros_like(self.head))
        self.converged.assign(tf.zeros_like(self.converged))
        self.started.assign(False)
        self.iterations.assign(0)  # a new run: its own counts
        self.evaluations.assign(0)


class DeviceLbfgsEngine:
    """:class:`Lbfgs` within pixel bounds behind the :class:`neural_style.engines.Engine` protocol.

    One :meth:`step` is one L-BFGS iteration of every image of the batch (one history each), which may evaluate the
    loss several times; :attr:`evaluations` counts the evaluations (the start's included). :attr:`finished` becomes
    true when every image has converged. The whole state, history included, is in :attr:`state`.
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
        jit_compile: bool = False,
    ) -> None:
        """Args:
        loss: ``loss(images, **params)`` -> terms; a piecewise loss (tiles) runs the iteration eagerly.
        start: [N, H, W, 3] float32 start images (preprocessed).
        params: per-image arrays passed to ``loss``.
        lower, upper: [3] per-channel bounds of the pixels (preprocessed), e.g. -mean and 255 - mean.
        memory: correction pairs kept per image.
        jit_compile: compile the loss and gradient with XLA.
        """
        self.optimizer = Lbfgs(start, lower, upper, memory=memory)
        self._evaluate, value_and_gradient = compile_loss(
            loss, params, jit_compile=jit_compile, images=resizable_spec(start)
        )
        optimizer = self.optimizer
        self._start: Callable[[], Mapping[str, tf.Tensor]]
        self._iterate: Callable[[], Mapping[str, tf.Tensor]]
        # The start is one evaluation and three assignments, run as they come: the evaluation is the compiled
        # loss the iteration calls, so nothing more is traced for it.
        self._start = lambda: optimizer.start(value_and_gradient)
        if is_piecewise(loss):  # the tiles run from Python: so does the iteration's control flow
            self._iterate = lambda: optimizer.iterate(value_and_gradient)
        else:
            self._iterate = tf.function(lambda: optimizer.iterate(value_and_gradient), autograph=False)
        self.finished = False
        self.start_losses: dict[str, np.ndarray] | None = None

    @property
    def evaluations(self) -> int:
        """Loss and gradient evaluations so far (over the saved run too, after a restore)."""
        return int(self.optimizer.evaluations.numpy())

    @property
    def state(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(optimizer=self.optimizer)

    def step(self) -> dict[str, np.ndarray]:
        """One L-BFGS iteration; returns {"total": [N]}, the loss of the new images."""
        if self.finished:
            return self.evaluate()
        if not bool(self.optimizer.started.numpy()):
            self.start_losses = {key: value.numpy() for key, value in self._start().items()}
        terms = {key: value.numpy() for key, value in self._iterate().items()}
        self.finished = bool(self.optimizer.converged.numpy().all())
        return terms

    def evaluate(self, images: np.ndarray | None = None) -> dict[str, np.ndarray]:
        values = self.optimizer.x.value() if images is None else tf.constant(images, tf.float32)
        return {key: value.numpy() for key, value in self._evaluate(values).items()}

    def images(self) -> np.ndarray:
        return self.optimizer.x.numpy()

    def reset(self, start: np.ndarray) -> None:
        """Starts again from ``start`` [N, H, W, 3] with an empty history; the loss stays the same."""
        self.optimizer.reset(start)
        self.finished = False
        self.start_losses = None

    def close(self) -> None:
        """Nothing to release."""
