"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.pipeline.workers import WorkerPool


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    """Two forked workers per test module (a module needing another pool defines its own)."""
    with WorkerPool(2, start_method="fork") as p:
        yield p
