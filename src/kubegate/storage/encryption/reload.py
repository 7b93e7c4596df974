"""--encryption-provider-config-automatic-reload: watch the file and swap the transformers when its
content changes to a valid config; an invalid edit is logged and the running config kept (upstream's
DynamicEncryptionConfigContent controller)."""
from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from .config import ConfigError, load
from .store import EncryptingStore

log = logging.getLogger(__name__)


class ConfigReloader:
    def __init__(self, path: str, store: EncryptingStore, content_hash: str, interval: float = 1.0) -> None:
        self._path = Path(path)
        self._store = store
        self._hash = content_hash
        self._interval = interval

    def check(self) -> bool:
        """Reload if the file changed; True when a new config took effect."""
        try:
            data = self._path.read_bytes()
        except OSError as e:
            log.error("encryption config reload: %s", e)
            return False
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._hash:
            return False
        try:
            cfg, transformers = load(self._path)
        except ConfigError as e:
            log.error("encryption config reload failed, keeping the running config: %s", e)
            self._hash = digest  # report a broken file once, not every interval
            return False
        self._store.set_transformers(transformers)
        self._hash = cfg.content_hash
        log.info("encryption config reloaded from %s", self._path)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.check()
