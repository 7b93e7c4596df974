"""Garbage-collector settings for a long-running server.

CPython's default (a young-generation collection every 700 container allocations) makes every
request pay for several collections that scan the objects the request just made, and full
collections keep re-scanning the objects loaded at start (caches, schemas, modules). A younger
generation of 50,000 keeps young collections rare and cheap per object, and freezing what exists
once the server is ready takes it out of every later collection (without a collection first: that
costs ~50 ms of start-up to free the few cycles start-up leaves). Reference cycles made later are
still collected; memory grows by at most the young generation."""
from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
