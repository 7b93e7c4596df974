"""POST /api/v1/namespaces/NS/serviceaccounts/NAME/token (upstream
pkg/registry/core/serviceaccount/storage/token.go): issue a bound service-account token."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from kubegate.api import errors
from kubegate.api.objects import timestamp_rfc3339
from kubegate.api.registry import ResourceRegistry
from kubegate.server.rest import Request
from kubegate.serviceaccount.claims import (
    EXPIRATION_EXTENSION_SECONDS, WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS, Ref, bound_claims,
)
from kubegate.serviceaccount.keys import Signer

_GROUP = "authentication.k8s.io"
_KIND = "TokenRequest"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 2**32 - 1  # math.MaxUint32


def _invalid(name: str, path: str, value: Any, detail: str) -> errors.StatusError:
    return errors.invalid(_KIND, name, [errors.field_invalid(path, value, detail)], _GROUP)


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


class TokenRequestREST:
    def __init__(self, by_plural: dict[str, ResourceRegistry], signer: Signer, issuer: str,
                 audiences: list[str], max_expiration_seconds: int, extend_expiration: bool,
                 clock: Callable[[], float] = time.time) -> None:
        self._sa = by_plural["serviceaccounts"]
        self._pods = by_plural["pods"]
        self._secrets = by_plural["secrets"]
        self._nodes = by_plural["nodes"]
        self._signer = signer
        self._issuer = issuer
        self._audiences = list(audiences)
        self._max = max_expiration_seconds
        self._extend = extend_expiration
        self._clock = clock

    async def create(self, req: Request, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        namespace, name = req.info.namespace, req.info.name
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if v is not None}
        if meta.get("name") and meta["name"] != name:
            raise _invalid(name, "metadata.name", meta["name"], "must match the service account name if specified")
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise _invalid(name, "metadata.namespace", meta["namespace"],
                           "must match the service account namespace if specified")
        sa = (await self._sa.get(namespace, name)).obj
        sa_uid = sa["metadata"]["uid"]
        if meta.get("uid") and meta["uid"] != sa_uid:
            raise errors.conflict(_KIND, name, f"the UID in the token request ({meta['uid']}) does not match the "
                                               f"UID of the service account ({sa_uid})", _GROUP)
        spec = obj.get("spec") or {}
        audiences = list(spec.get("audiences") or self._audiences)
        expiration = spec.get("expirationSeconds")
        if expiration is None:
            expiration = DEFAULT_EXPIRATION_SECONDS
        now = int(self._clock())
        meta.setdefault("name", name)
        meta.setdefault("namespace", namespace)
        meta.setdefault("uid", sa_uid)
        meta["creationTimestamp"] = timestamp_rfc3339(now)
        if expiration < MIN_EXPIRATION_SECONDS:
            raise _invalid("", "spec.expirationSeconds", expiration, "may not specify a duration less than 10 minutes")
        if expiration > MAX_EXPIRATION_SECONDS:
            raise _invalid("", "spec.expirationSeconds", expiration,
                           "may not specify a duration larger than 2^32 seconds")

        ref = spec.get("boundObjectRef")
        pod = secret = node = None
        if ref is not None:
            pod, secret, node = await self._bound(namespace, name, ref)
        warnings: list[str] = []
        if self._max > 0 and expiration > self._max:
            warnings.append(f"requested expiration of {expiration} seconds shortened to {self._max} seconds")
            expiration = self._max
        # The kubelet's 3607 s request for a pod, for the API's own audiences, gets a one-year token
        # that is only "stale" (warnafter) after an hour, so old clients keep working.
        token_seconds, warnafter = expiration, 0
        if (self._extend and pod is not None and expiration == WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
                and set(audiences) <= set(self._audiences)):
            token_seconds, warnafter = EXPIRATION_EXTENSION_SECONDS, expiration
        claims = bound_claims(issuer=self._issuer, namespace=namespace, service_account=Ref(name, sa_uid),
                              audiences=audiences, now=now, expiration_seconds=token_seconds,
                              jti=str(uuid.uuid4()), pod=pod, secret=secret, node=node,
                              warnafter_seconds=warnafter)
        out_ref = None if ref is None else {k: ref[k] for k in ("kind", "apiVersion", "name", "uid") if ref.get(k)}
        return {"kind": _KIND, "apiVersion": f"{_GROUP}/v1", "metadata": meta,
                "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": out_ref},
                "status": {"token": self._signer.sign(claims), "expirationTimestamp": timestamp_rfc3339(now + expiration)},
                }, warnings

    async def _bound(self, namespace: str, sa_name: str,
                     ref: dict[str, Any]) -> tuple[Ref | None, Ref | None, Ref | None]:
        group, version = _group_version(ref.get("apiVersion") or "")
        kind, ref_name, ref_uid = ref.get("kind") or "", ref.get("name") or "", ref.get("uid") or ""
        pod = secret = node = None
        if group == "" and kind == "Pod":
            obj = (await self._pods.get(namespace, ref_name)).obj
            if (obj.get("spec") or {}).get("serviceAccountName") != sa_name:
                raise errors.bad_request(f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                                         "different serviceaccount name.")
            uid = obj["metadata"]["uid"]
            pod = Ref(ref_name, uid)
            node_name = (obj.get("spec") or {}).get("nodeName")
            if node_name:
                # A pod's node goes into the claims even when the Node object is gone (name only).
                found = self._nodes.get_cached(None, node_name)
                node = Ref(node_name, found.obj["metadata"]["uid"] if found is not None else "")
        elif group == "" and kind == "Node":
            uid = (await self._nodes.get(None, ref_name)).obj["metadata"]["uid"]
            node = Ref(ref_name, uid)
        elif group == "" and kind == "Secret":
            uid = (await self._secrets.get(namespace, ref_name)).obj["metadata"]["uid"]
            secret = Ref(ref_name, uid)
        else:
            raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
        if ref_uid and ref_uid != uid:
            raise errors.conflict(kind, ref_name, f"the UID in the bound object reference ({ref_uid}) does not "
                                                  "match the UID in record. The object might have been deleted "
                                                  "and then recreated", group)
        return pod, secret, node
