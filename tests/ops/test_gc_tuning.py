"""The collector settings a worker applies at start (`ops.gc_tuning`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from echo_stream.ops.gc_tuning import YOUNG_THRESHOLD
from tests.conftest import make_app
from tests.live import serve


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_a_started_worker_freezes_its_start_up_heap_and_spaces_out_collections(
    restore_gc: None,
) -> None:
    gc.unfreeze()
    with serve(make_app(gc_tuning=True)):
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 10_000  # modules, settings and the app itself
        # Cycles made after start-up are still collected.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1


def test_gc_tuning_off_keeps_cpythons_defaults(restore_gc: None) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    with serve(make_app(gc_tuning=False)):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
