"""Fixtures for end-to-end tests: one real kubegate server per session (and fresh ones on demand)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.cluster import Cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("kg") / "data").start()
    yield c
    c.stop()


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "data")
    yield c
    if c.proc is not None and c.proc.poll() is None:
        c.stop()


@pytest.fixture
def ns(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A namespace of its own for one test."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:50].strip("-")
    cluster.ok("create", "namespace", name)
    return name
