"""The Certificates API steps `kubegate node join` and `kubegate kubeconfig user` share: raw-JSON
calls through the python client that fail with the server's Status message, reading what a
request has come to, and waiting for its certificate.
"""
from __future__ import annotations

import base64
import json
import time
from typing import Any

_POLL_SECONDS = 0.5


class CSRFlowError(Exception):
    """A step failed; the message is what the command prints."""


def _condition(csr: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in (csr.get("status") or {}).get("conditions") or []
                 if c.get("type") == ctype and c.get("status") == "True"), None)


def issued_certificate(csr: dict[str, Any]) -> bytes | None:
    """The certificate once issued; CSRFlowError once it never will be (denied or failed)."""
    for ctype in ("Denied", "Failed"):
        c = _condition(csr, ctype)
        if c is not None:
            raise CSRFlowError(f"certificate signing request {csr['metadata']['name']} was {ctype.lower()}: "
                               f"{c.get('message') or c.get('reason') or ''}".rstrip(": "))
    cert = (csr.get("status") or {}).get("certificate")
    return base64.b64decode(cert) if cert else None


class CSRClient:
    """Certificates API calls over a python-client ApiClient, as raw JSON."""

    def __init__(self, api: Any, unauthorized: str | None = None) -> None:
        from kubernetes import client
        self.api = api
        self.unauthorized = unauthorized  # what a 401 means for these credentials, when known
        self.csrs = client.CertificatesV1Api(api)

    def call(self, fn: Any, *args: Any, tolerate: tuple[int, ...] = ()) -> dict[str, Any] | None:
        """The response object; None for a status in `tolerate`; CSRFlowError for any other failure."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError
        try:
            return dict(json.loads(fn(*args, _preload_content=False).data))
        except ApiException as e:
            if e.status in tolerate:
                return None
            if e.status == 401 and self.unauthorized:
                raise CSRFlowError(f"401 Unauthorized: {self.unauthorized}") from None
            try:
                message = json.loads(e.body)["message"]
            except (TypeError, ValueError, KeyError):
                message = f"{e.reason} ({e.status})"
            raise CSRFlowError(message) from None
        except HTTPError as e:
            raise CSRFlowError(f"cannot reach the server: {e}") from None

    def must(self, fn: Any, *args: Any) -> dict[str, Any]:
        """The response object; CSRFlowError for any failure."""
        got = self.call(fn, *args)
        assert got is not None  # nothing tolerated
        return got

    def get_csr(self, name: str) -> dict[str, Any] | None:
        return self.call(self.csrs.read_certificate_signing_request, name, tolerate=(404,))

    def wait_for_certificate(self, name: str, timeout: float, hint: str = "") -> bytes:
        """The certificate of request `name` once issued; CSRFlowError when it is denied, failed or
        deleted, or after `timeout` seconds (the message then ends with `hint`)."""
        deadline = time.monotonic() + timeout
        while True:
            csr = self.get_csr(name)
            if csr is None:
                raise CSRFlowError(f"certificate signing request {name} was deleted before it was signed")
            cert = issued_certificate(csr)
            if cert is not None:
                return cert
            if time.monotonic() > deadline:
                raise CSRFlowError(f"timed out waiting for the certificate of {name}{hint}")
            time.sleep(_POLL_SECONDS)
