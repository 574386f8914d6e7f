"""Fixtures for the sparse attention tests: named batch shapes and paged KV caches."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("torch") is None:
    # An install without the cpu extra: the modules that use these fixtures skip themselves
    # (pytest.importorskip("torch")); test_sparse_config.py still runs.
    SHAPES: list = []
else:
    from tests.generation.sparse_attention.sparse_batches import (
        SHAPES,
        Paged,
        Shape,
        make_paged,
        shape_named,
    )


@pytest.fixture(params=SHAPES, ids=[s.name for s in SHAPES])
def shape(request: pytest.FixtureRequest) -> Shape:
    """Each named batch shape in turn."""
    return request.param


@pytest.fixture
def build_paged():
    """The `make_paged` builder, for tests that pick their own shape or dtype."""
    return make_paged


@pytest.fixture
def paged(shape: Shape) -> Paged:
    """An fp32 paged batch of each named shape."""
    return make_paged(shape)


@pytest.fixture
def named():
    """Look a batch shape up by name."""
    return shape_named
