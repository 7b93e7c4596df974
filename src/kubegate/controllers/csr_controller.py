"""What the CSR controllers share, as upstream's certificates.CertificateController: every CSR
added or changed is queued by name and handled from the cache (one gone meanwhile needs nothing),
and the controller's own user must be allowed the signer verb before it writes.
"""
from __future__ import annotations

import logging
from typing import Any

from kubegate.authz.signers import authorized_for_signer
from kubegate.authz.types import Authorizer
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer


class CSRController:
    """Subclasses implement `handle`; `queue_name` names the work queue, `log` their logger."""

    def __init__(self, client: ControllerClient, authorizer: Authorizer, queue_name: str,
                 log: logging.Logger) -> None:
        self.client = client
        self.authorizer = authorizer
        self.log = log
        self.queue: WorkQueue[str] = WorkQueue(queue_name)
        self.informer = Informer(client.registry("certificatesigningrequests").cache, self._on_event)

    def _on_event(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "DELETED" and obj is not None:
            self.queue.add(obj["metadata"]["name"])

    async def run(self) -> None:
        await self.client.require("certificatesigningrequests")
        await run_informers([self.informer], lambda: self.queue.drain(self.sync))

    async def sync(self, name: str) -> bool:
        csr = self.client.cached("certificatesigningrequests", None, name)
        return True if csr is None else await self.handle(name, csr)

    async def handle(self, name: str, csr: dict[str, Any]) -> bool:
        raise NotImplementedError

    async def permitted(self, name: str, verb: str, signer_name: str) -> bool:
        """Whether this controller's user may `verb` requests of `signer_name`; logged when not."""
        if await authorized_for_signer(self.authorizer, self.client.user, verb, signer_name):
            return True
        self.log.warning("%s: user %s not permitted to %s requests with signerName %s", name,
                         self.client.user.name, verb, signer_name)
        return False
