"""Revisioned key/value storage: the Store protocol, the SQLite backend and the watch cache."""
from .cache import CacheEvent, CacheSet, CacheWatcher, Entry, ListResult, WatchCache
from .interface import (
    KV,
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    LeaseNotFoundError,
    Progress,
    RangeResult,
    Store,
    StoreClosedError,
    StoreError,
    WatchStream,
)
from .sqlite import SQLiteStore, SQLiteWatch

__all__ = [
    "KV", "CacheEvent", "CacheSet", "CacheWatcher", "CompactedError", "ConflictError", "Entry", "Event",
    "FutureRevisionError", "KeyExistsError", "KeyNotFoundError", "LeaseNotFoundError", "ListResult",
    "Progress", "RangeResult", "SQLiteStore", "SQLiteWatch", "Store", "StoreClosedError", "StoreError",
    "WatchCache", "WatchStream",
]
