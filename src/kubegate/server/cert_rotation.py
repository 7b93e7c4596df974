"""Keeps a running server's certificates alive: renews the ones it owns when under a third of their
life remains, serves a changed serving certificate to new connections without a restart, and
reports certificates that expire within 30 days (start-up log and /readyz?verbose)."""
from __future__ import annotations

import asyncio
import datetime
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path

from kubegate.pki import renewal
from kubegate.pki.certs import PKIError, load_pair
from kubegate.pki.layout import PKIPaths
from kubegate.server.tls import reload_cert_chain

log = logging.getLogger("kubegate.certs")

CHECK_INTERVAL = 10.0  # seconds; a tick stats a few files and parses a dozen certificates


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class CertRotator:
    def __init__(self, paths: PKIPaths, ssl_ctx: ssl.SSLContext, cert_file: str, key_file: str, *,
                 owned: tuple[str, ...], clock: Callable[[], datetime.datetime] = renewal.utcnow) -> None:
        self._paths = paths
        self._ctx = ssl_ctx
        self._cert_file, self._key_file = Path(cert_file), Path(key_file)
        self._owned = owned
        self._clock = clock
        self._served = (_stamp(self._cert_file), _stamp(self._key_file))
        self._warnings: list[str] = []

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def check(self) -> None:
        """One pass: renew what is due, reload the serving pair if its files changed, refresh the
        expiry warnings. Failures are logged and retried on the next pass."""
        now = self._clock()
        for name in self._owned:
            r = renewal.BY_NAME[name]
            try:
                if renewal.exists(self._paths, r) and renewal.renewal_due(renewal.read(self._paths, r), now) \
                        and renewal.renew(self._paths, name, now):
                    log.info("renewed certificate %s: less than a third of its life remained", name)
            except (PKIError, OSError) as e:
                log.error("renewing certificate %s failed: %s", name, e)
        self._reload_serving()
        new = renewal.expiry_warnings(self._paths, now)
        for w in new:
            if w not in self._warnings:
                log.warning("%s", w)
        self._warnings = new

    def _reload_serving(self) -> None:
        stamps = (_stamp(self._cert_file), _stamp(self._key_file))
        if stamps == self._served:
            return
        try:
            # A renewal writes the key before the certificate: a mismatched pair is a renewal in
            # progress, picked up on the next pass.
            load_pair(self._cert_file, self._key_file)
            reload_cert_chain(self._ctx, str(self._cert_file), str(self._key_file))
        except (PKIError, ssl.SSLError, OSError) as e:
            log.warning("not serving the changed certificate %s yet: %s", self._cert_file, e)
            return
        self._served = stamps
        log.info("serving the new certificate %s to new connections", self._cert_file)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            self.check()
