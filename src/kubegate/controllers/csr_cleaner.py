"""The csrcleaner controller (upstream pkg/controller/certificates/cleaner/cleaner.go): once an hour
it deletes CertificateSigningRequests nobody needs any more: issued or denied or failed ones an hour
after that condition was last updated, pending ones (no conditions) a day after creation, and
issued ones whose certificate has expired.

It acts as `system:serviceaccount:kube-system:certificate-controller`, as upstream's does; each
delete carries a UID precondition so a CSR re-created under the same name is never removed.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import logging
from collections.abc import Callable
from typing import Any

from cryptography import x509

from kubegate.api import errors
from kubegate.controllers.client import ControllerClient

log = logging.getLogger("kubegate.csrcleaner")

POLLING_INTERVAL = 3600.0  # seconds
APPROVED_EXPIRATION = datetime.timedelta(hours=1)
DENIED_EXPIRATION = datetime.timedelta(hours=1)
PENDING_EXPIRATION = datetime.timedelta(hours=24)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _older_than(value: Any, age: datetime.timedelta, now: datetime.datetime) -> bool:
    """isOlderThan: a set time more than `age` before now."""
    t = _time(value)
    return t is not None and now - t > age


def _conditions(csr: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in (csr.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]


def _certificate_expired(certificate: str, now: datetime.datetime) -> bool:
    """isExpired: the first certificate of the first PEM block is past its NotAfter (unreadable: no)."""
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(certificate))
    except (binascii.Error, ValueError):
        return False
    return now > cert.not_valid_after_utc


def cleanup_reason(csr: dict[str, Any], now: datetime.datetime) -> str | None:
    """Why `csr` is to be deleted now (upstream's log text), or None to keep it."""
    conds = _conditions(csr)
    certificate = str((csr.get("status") or {}).get("certificate") or "")
    for c in conds:
        if c.get("type") == "Approved" and certificate and _older_than(c.get("lastUpdateTime"), APPROVED_EXPIRATION,
                                                                        now):
            return "Cleaning CSR as it is more than approvedExpiration duration old and approved."
    for c in conds:
        if c.get("type") == "Denied" and _older_than(c.get("lastUpdateTime"), DENIED_EXPIRATION, now):
            return "Cleaning CSR as it is more than deniedExpiration duration old and denied."
    for c in conds:
        if c.get("type") == "Failed" and _older_than(c.get("lastUpdateTime"), DENIED_EXPIRATION, now):
            return "Cleaning CSR as it is more than deniedExpiration duration old and failed."
    if not conds and _older_than((csr.get("metadata") or {}).get("creationTimestamp"), PENDING_EXPIRATION, now):
        return "Cleaning CSR as it is more than pendingExpiration duration old and unhandled."
    if certificate and any(c.get("type") == "Approved" for c in conds) and _certificate_expired(certificate, now):
        return "Cleaning CSR as the associated certificate is expired."
    return None


class CSRCleaner:
    def __init__(self, client: ControllerClient, interval: float = POLLING_INTERVAL,
                 clock: Callable[[], datetime.datetime] = _utcnow) -> None:
        self.client = client
        self.interval = interval
        self.clock = clock

    async def run(self) -> None:
        await self.client.require("certificatesigningrequests")
        while True:
            await self.clean()
            await asyncio.sleep(self.interval)

    async def clean(self) -> int:
        """One pass over every CSR; the number deleted."""
        deleted = 0
        now = self.clock()
        for csr in self.client.cached_list("certificatesigningrequests"):
            reason = cleanup_reason(csr, now)
            if reason is None:
                continue
            name, uid = csr["metadata"]["name"], csr["metadata"].get("uid")
            log.info("%s csr=%s", reason, name)
            try:
                await self.client.delete("certificatesigningrequests", None, name,
                                         {"preconditions": {"uid": uid}} if uid else None)
                deleted += 1
            except errors.StatusError as e:
                # Gone or replaced meanwhile (404/409): nothing to clean; anything else waits for the next pass.
                if e.code not in (404, 409):
                    log.warning("Error while attempting to clean CSR %s: %s", name, e.message)
        return deleted
