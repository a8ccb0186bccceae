"""What a stylization run reports: :class:`Progress` records, and the records of a sequence of runs.

A run (:class:`neural_style.stylization.Stylization`) is an iterable of :class:`Progress` records. Sweeps (chunks of
candidates), coarse-to-fine stages and the like are sequences of runs, yielded one at a time with an index;
:func:`records_of` turns a function that yields such runs into one that yields their records in turn, and
:func:`iterated` a run's maker into a generator of its records. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import ParamSpec, TypeVar

import numpy as np

__all__ = ["Progress", "iterated", "records_of"]

P = ParamSpec("P")


@dataclasses.dataclass(frozen=True)
class Progress:
    """What a run reports after each step.

    Attributes:
        iteration: steps done so far, 0 (the start images, with their losses) to ``iterations``.
        iterations: steps in the whole run.
        step_loss: [N] total loss of the images the last step started from; None at iteration 0.
        losses: {"content", "style", "tv", "total"}: [N] each, of the images being optimised (the optimiser's view:
            Adam's may lie outside 0..255); at print iterations and the end.
        images: [N, H, W, 3] float32 RGB 0..255, the best images seen at checkpoints so far, as they are saved:
            clipped to 0..255 and rounded to whole grey levels (colours preserved if asked; the average of the
            iterates with ``average_decay``); at checkpoint iterations and the end, where it is the run's result.
        image_losses: the loss terms ([N] each) of :attr:`images` exactly as they are, i.e. of the saved files
            (PNG; a lossy format such as JPEG changes the pixels again); with :attr:`images`.
        final: true for the last record of the run: after ``iterations`` steps, or earlier when a stopping rule
            (``stop_at_loss``, ``tolerance``) fired or L-BFGS ended by itself.
        evaluations: L-BFGS only: loss and gradient evaluations so far.
        step_losses: the loss terms ([N] each) the last step computed on its way, with no extra evaluation: for
            Adam those of the images the step started from (all terms), for L-BFGS the total at the new images.
    """

    iteration: int
    iterations: int
    step_loss: np.ndarray | None = None
    losses: dict[str, np.ndarray] | None = None
    images: np.ndarray | None = None
    final: bool = False
    evaluations: int | None = None
    step_losses: dict[str, np.ndarray] | None = None
    image_losses: dict[str, np.ndarray] | None = None

    @property
    def image(self) -> np.ndarray | None:
        """The first (for a single-image run, the only) image of :attr:`images`."""
        return None if self.images is None else self.images[0]


T = TypeVar("T", bound=Callable[..., object])


def _public(function: T, name: str, beside: Callable[..., object], doc: str) -> T:
    """``function`` named ``name`` in the module of ``beside``, with ``doc`` and the parameters of ``beside`` (for
    ``help`` and ``inspect.signature``): as if defined there."""
    function.__name__ = function.__qualname__ = name
    function.__module__ = beside.__module__
    function.__doc__ = doc
    returns = inspect.signature(function).return_annotation
    function.__signature__ = inspect.signature(beside).replace(return_annotation=returns)  # type: ignore[attr-defined]
    return function


def iterated(run: Callable[P, Iterable[Progress]], name: str) -> Callable[P, Iterator[Progress]]:
    """The generator function ``name`` that takes the arguments of ``run``, makes the run when first asked for a
    record and yields its records."""

    def records(*args: P.args, **kwargs: P.kwargs) -> Iterator[Progress]:
        yield from run(*args, **kwargs)

    return _public(
        records,
        name,
        run,
        f"The records of a :class:`{run.__name__}` of the same arguments, as a generator: the run is made when the "
        f"first record is asked for. See :class:`{run.__name__}`.",
    )


def records_of(
    runs: Callable[P, Iterable[tuple[int, Iterable[Progress]]]], name: str
) -> Callable[P, Iterator[tuple[int, Progress]]]:
    """The function ``name`` that takes the arguments of ``runs`` and yields (index, record) for every record of
    every run that ``runs`` yields as (index, run), iterating each run to its end before asking for the next."""

    def records(*args: P.args, **kwargs: P.kwargs) -> Iterator[tuple[int, Progress]]:
        for index, run in runs(*args, **kwargs):
            for record in run:
                yield index, record

    return _public(
        records,
        name,
        runs,
        f"The records of :func:`{runs.__name__}`'s runs in turn, with the same arguments: (the run's index, each "
        f":class:`~neural_style.progress.Progress` of it). See :func:`{runs.__name__}`.",
    )
