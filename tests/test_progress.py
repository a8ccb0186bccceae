"""Tests of neural_style.progress: a record's image, and the records of runs made by records_of and iterated."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import numpy as np

from neural_style.progress import Progress, iterated, records_of


def test_the_image_is_the_first_of_the_images() -> None:
    images = np.arange(2 * 1 * 2 * 3, dtype=np.float32).reshape(2, 1, 2, 3)
    assert Progress(3, 5, images=images).image.tolist() == [[[0, 1, 2], [3, 4, 5]]]
    assert Progress(3, 5).image is None


def test_records_of_yields_each_run_to_its_end_before_asking_for_the_next() -> None:
    """(index, record) for every record of every run, in order; the next run is asked for only once the one before
    has given its last record (a sweep holds one chunk at a time), with the arguments given."""
    log: list[str] = []

    def run(name: str, count: int) -> Iterator[Progress]:
        for k in range(1, count + 1):
            log.append(f"{name}{k}")
            yield Progress(k, count)

    def runs(first: int, counts: tuple[int, ...], *, name: str) -> Iterator[tuple[int, Iterator[Progress]]]:
        for offset, count in enumerate(counts):
            log.append(f"make {name}{first + offset}")
            yield first + offset, run(f"{name}{first + offset}:", count)

    records = records_of(runs, "records")
    got = [(index, record.iteration, record.iterations) for index, record in records(4, (2, 1), name="r")]
    assert got == [(4, 1, 2), (4, 2, 2), (5, 1, 1)]
    assert log == ["make r4", "r4:1", "r4:2", "make r5", "r5:1"]
    assert (records.__name__, records.__module__) == ("records", __name__)
    assert ":func:`runs`" in (records.__doc__ or "")
    assert list(inspect.signature(records).parameters) == ["first", "counts", "name"]


def test_iterated_makes_the_run_when_the_first_record_is_asked_for() -> None:
    made: list[tuple[int, str]] = []

    class Run:
        def __init__(self, count: int, *, label: str) -> None:
            made.append((count, label))
            self.count = count

        def __iter__(self) -> Iterator[Progress]:
            return (Progress(k, self.count) for k in range(self.count + 1))

    records = iterated(Run, "run")
    generator = records(2, label="a")
    assert made == []  # nothing is built before a record is asked for
    assert [record.iteration for record in generator] == [0, 1, 2]
    assert made == [(2, "a")]
    assert (records.__name__, records.__module__) == ("run", __name__)
    assert list(inspect.signature(records).parameters) == ["count", "label"]
    assert inspect.signature(records).return_annotation == "Iterator[Progress]"
