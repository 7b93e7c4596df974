"""Putting encryption at rest between the registries and the backend, from the server's flags."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from kubegate.api.resources import Resource

from ..interface import Store
from .config import load
from .reload import ConfigReloader
from .store import EncryptingStore


def encrypting_store(backend: Store, config_path: str | None, automatic_reload: bool,
                     resources: Iterable[Resource],
                     background: list[Callable[[], Awaitable[None]]]) -> Store:
    """The backend itself when no config is given; else the backend behind the configured transformers
    (ConfigError, upstream's message, for a bad file). With reload on, appends the file watcher."""
    if not config_path:
        return backend
    cfg, transformers = load(config_path)
    store = EncryptingStore(backend, transformers,
                            [(r.key_prefix, (r.group, r.plural)) for r in resources if r.persisted])
    if automatic_reload:
        background.append(ConfigReloader(config_path, store, cfg.content_hash).run)
    if automatic_reload or transformers.kms:
        background.append(store.run_kms_probes)
    return store


def kms_health_check(store: Store, automatic_reload: bool) -> Callable[[], str | None] | None:
    """The `kms-providers` health check, registered as upstream does: when a KMS v2 provider is configured
    or automatic reload is on (then present even without KMS providers)."""
    if isinstance(store, EncryptingStore) and (automatic_reload or store.transformers.kms):
        return store.kms_health
    return None
