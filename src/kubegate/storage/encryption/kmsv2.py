"""The `kms` provider, apiVersion v2: envelope encryption with a KMS plugin over gRPC on a unix socket,
after upstream's kmsv2 envelope transformer and kmsv2PluginProbe (encryptionconfig/config.go).

A random 32-byte seed is encrypted once by the plugin (Encrypt) and reused for every write while the
plugin's key ID stays the same; each write derives a fresh AES-GCM key with HKDF-SHA256(seed, 32 random
info bytes). The stored value is the EncryptedObject protobuf. The seed is refreshed when the key ID
from Status changes; writes keep using the current seed for at most three minutes without a healthy
Status (upstream's coasting window), then fail. Reads need the plugin only for an encrypted seed not
yet seen (Decrypt; then cached for a day). Status also drives the `kms-providers` health check.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from kubegate.api.objects import ZERO_TIME, timestamp_rfc3339
from kubegate.protobuf.wire import WireError

from . import kms_api as api
from .aesgcm import GCMTransformer
from .transformer import TransformFailure

PREFIX = b"k8s:enc:kms:v2:"
API_VERSIONS = ("v2", "v2beta1")
HEALTHZ_POSITIVE_TTL = 20.0   # kmsPluginHealthzPositiveTTL
HEALTHZ_NEGATIVE_TTL = 3.0    # kmsPluginHealthzNegativeTTL
WRITE_DEK_MAX_TTL = 180.0     # kmsv2PluginWriteDEKSourceMaxTTL
DEK_CACHE_TTL = 24 * 3600.0   # envelope cacheTTL
_INFO = 32                    # HKDF info bytes in front of each value; also the seed and key size
_MAX_DEK_SOURCE = 1024
_MAX_KEY_ID = 1024
_MAX_ANNOTATIONS = 32 * 1024
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def key_id_hash(key_id: str) -> str:
    """GetHashIfNotEmpty: key IDs appear in messages only hashed."""
    return f"sha256:{hashlib.sha256(key_id.encode()).hexdigest()}" if key_id else ""


def _rfc3339(t: float) -> str:
    return timestamp_rfc3339(t) if t else ZERO_TIME


def rpc_error(e: grpc.RpcError) -> str:
    """Go's status error text: `rpc error: code = Unavailable desc = ...`."""
    code = e.code() if hasattr(e, "code") else None
    name = "".join(w.capitalize() for w in code.name.split("_")) if code is not None else "Unknown"
    details = e.details() if hasattr(e, "details") else str(e)
    return f"rpc error: code = {name} desc = {details}"


# --- validation of EncryptedObject (ValidateEncryptedObject) -------------------------------------------

def validate_key_id(key_id: str) -> str | None:
    if not key_id:
        return "keyID is empty"
    if len(key_id) > _MAX_KEY_ID:
        return f"keyID is {len(key_id)} bytes, which exceeds the max size of {_MAX_KEY_ID}"
    return None


def _fqdn_errors(name: str) -> list[str]:
    path = "annotations"
    if len(name) > 253:
        return [f'{path}: Invalid value: "{name}": must be no more than 253 characters']
    labels = name.split(".")
    if len(labels) < 2:
        return [f'{path}: Invalid value: "{name}": should be a domain with at least two segments separated by dots']
    if any(not _DNS1123_LABEL.fullmatch(label) or len(label) > 63 for label in labels):
        return [f'{path}: Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"]
    return []


def validate(o: api.EncryptedObject) -> str | None:
    if o.encrypted_dek_source_type not in (api.AES_GCM_KEY, api.HKDF_SHA256_XNONCE_AES_GCM_SEED):
        return f"unknown encryptedDEKSourceType: {o.encrypted_dek_source_type}"
    if not o.encrypted_data:
        return "encrypted data is empty"
    if not o.encrypted_dek_source:
        return "failed to validate encrypted DEK source: encrypted DEK source is empty"
    if len(o.encrypted_dek_source) > _MAX_DEK_SOURCE:
        return (f"failed to validate encrypted DEK source: encrypted DEK source is {len(o.encrypted_dek_source)} "
                f"bytes, which exceeds the max size of {_MAX_DEK_SOURCE}")
    if (err := validate_key_id(o.key_id)) is not None:
        return f"failed to validate key id: {err}"
    errs = [e for k in o.annotations for e in _fqdn_errors(k)]
    size = sum(len(k) + len(v) for k, v in o.annotations.items())
    if size > _MAX_ANNOTATIONS:
        errs.append(f"total size of annotations is {size}, which exceeds the max size of {_MAX_ANNOTATIONS}")
    if errs:
        return "failed to validate annotations: " + (errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    return None


def cache_key(o: api.EncryptedObject) -> bytes:
    """generateCacheKey: type, encrypted DEK source, key ID and sorted annotations, length-prefixed."""
    parts = [struct.pack(">I", o.encrypted_dek_source_type),
             struct.pack(">H", len(o.encrypted_dek_source)), o.encrypted_dek_source,
             struct.pack(">H", len(o.key_id.encode())), o.key_id.encode()]
    if o.annotations:
        parts.append(struct.pack(">I", len(o.annotations)))
        for k in sorted(o.annotations):
            v = o.annotations[k]
            parts += [struct.pack(">H", len(k.encode())), k.encode(), struct.pack(">H", len(v)), v]
    return b"".join(parts)


# --- the data transformers behind a DEK or seed -----------------------------------------------------

class SeedTransformer:
    """NewHKDFExtendedNonceGCMTransformer: info ‖ nonce ‖ AES-GCM(data) with key HKDF-Expand(seed, info)."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) < _INFO:
            raise TransformFailure(f"invalid seed length {len(seed)} used for key generation")
        self._seed = seed

    def _derived(self, info: bytes) -> GCMTransformer:
        return GCMTransformer(HKDFExpand(hashes.SHA256(), _INFO, info).derive(self._seed))

    def to_storage(self, data: bytes, ctx: bytes) -> bytes:
        info = os.urandom(_INFO)
        return info + self._derived(info).to_storage(data, ctx)

    def from_storage(self, data: bytes, ctx: bytes) -> tuple[bytes, bool]:
        if len(data) < _INFO:
            raise TransformFailure("the stored data was shorter than the required size")
        return self._derived(data[:_INFO]).from_storage(data[_INFO:], ctx)


def _data_transformer(key: bytes, seed: bool) -> SeedTransformer | GCMTransformer:
    if seed:
        return SeedTransformer(key)
    try:
        return GCMTransformer(key)  # AES_GCM_KEY objects from older servers: the plaintext is the DEK itself
    except ValueError:
        raise TransformFailure(f"crypto/aes: invalid key size {len(key)}") from None


# --- the plugin client ------------------------------------------------------------------------------

class GRPCService:
    """Unary calls to the plugin with the configured timeout on each (upstream's grpc_service.go)."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint  # unix:///path, which grpc understands as is
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def _call(self, method: str, response: Any) -> Any:
        if self._channel is None:  # made on first use so it binds to the running event loop
            # a local socket is cheap to redial: a plugin that comes back is seen within a second,
            # not after grpc's default backoff of up to two minutes
            self._channel = grpc.aio.insecure_channel(self.endpoint, options=[
                ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000)])
        return self._channel.unary_unary(method, request_serializer=lambda b: b,
                                         response_deserializer=response.decode)

    async def status(self) -> api.StatusResponse:
        resp: api.StatusResponse = await self._call(api.STATUS, api.StatusResponse)(b"", timeout=self.timeout)
        return resp

    async def encrypt(self, uid: str, plaintext: bytes) -> api.EncryptResponse:
        call = self._call(api.ENCRYPT, api.EncryptResponse)
        resp: api.EncryptResponse = await call(api.EncryptRequest(plaintext, uid).encode(), timeout=self.timeout)
        return resp

    async def decrypt(self, uid: str, o: api.EncryptedObject) -> bytes:
        call = self._call(api.DECRYPT, api.DecryptResponse)
        req = api.DecryptRequest(o.encrypted_dek_source, uid, o.key_id, o.annotations)
        resp: api.DecryptResponse = await call(req.encode(), timeout=self.timeout)
        return resp.plaintext

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


# --- the provider: transformer, DEK state and probe ---------------------------------------------------

@dataclass(frozen=True)
class State:
    """The current write seed and how it is described in every EncryptedObject written with it."""

    transformer: SeedTransformer
    key_id: str
    encrypted_dek_source: bytes
    annotations: dict[str, bytes]
    uid: str
    expires: float
    cache_key: bytes


class KMSv2Provider:
    def __init__(self, name: str, endpoint: str, timeout: float, *, service: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.prefix = PREFIX + name.encode() + b":"
        self.timeout = timeout
        self._service = service if service is not None else GRPCService(endpoint, timeout)
        self._clock = clock
        self._state: State | None = None
        self._deks: dict[bytes, tuple[SeedTransformer | GCMTransformer, float]] = {}
        self._version = ""
        self._last_error: str | None = "not yet checked"
        self._checked = float("-inf")
        self._ttl = HEALTHZ_NEGATIVE_TTL
        self._lock = asyncio.Lock()

    # -- Transformer ---------------------------------------------------------------------------------

    def to_storage(self, data: bytes, ctx: bytes) -> bytes:
        state = self._state
        if state is None:
            raise TransformFailure("got unexpected nil transformer")
        now = self._clock()
        if now > state.expires:
            raise TransformFailure(f'encryptedDEKSource with keyID hash "{key_id_hash(state.key_id)}" expired at '
                                   f"{_rfc3339(state.expires)} (current time is {_rfc3339(now)})")
        self._remember(state.cache_key, state.transformer)
        return api.EncryptedObject(state.transformer.to_storage(data, ctx), state.key_id, state.encrypted_dek_source,
                                   state.annotations).encode()

    def from_storage(self, data: bytes, ctx: bytes) -> tuple[bytes, bool]:
        o = self._decode(data)
        found = self._deks.get(cache_key(o))
        if found is None:
            # load() runs before every read path that can meet a new seed; reaching here means it failed
            raise TransformFailure("failed to decrypt DEK, error: the DEK for this value is not available")
        out, stale = found[0].from_storage(o.encrypted_data, ctx)
        state = self._state
        return out, (stale or state is None or o.key_id != state.key_id
                     or o.encrypted_dek_source_type != api.HKDF_SHA256_XNONCE_AES_GCM_SEED)

    @staticmethod
    def _decode(data: bytes) -> api.EncryptedObject:
        try:
            o = api.EncryptedObject.decode(data)
        except WireError as e:
            raise TransformFailure(str(e)) from None
        if (err := validate(o)) is not None:
            raise TransformFailure(err)
        return o

    async def load(self, data: bytes) -> None:
        """Make sure the seed or DEK behind one stored value (prefix stripped) is cached, asking the plugin
        to decrypt it if not; TransformFailure with upstream's text when the plugin cannot."""
        o = self._decode(data)
        key = cache_key(o)
        if key in self._deks:
            return
        try:
            plain = await self._service.decrypt(str(uuid.uuid4()), o)
        except grpc.RpcError as e:
            raise TransformFailure(f"failed to decrypt DEK, error: {rpc_error(e)}") from None
        self._remember(key, _data_transformer(plain, o.encrypted_dek_source_type == api.HKDF_SHA256_XNONCE_AES_GCM_SEED))

    def _remember(self, key: bytes, transformer: SeedTransformer | GCMTransformer) -> None:
        now = self._clock()
        if key not in self._deks:
            for k in [k for k, (_, exp) in self._deks.items() if exp < now]:
                del self._deks[k]
        self._deks[key] = (transformer, now + DEK_CACHE_TTL)

    # -- probe ---------------------------------------------------------------------------------------

    @property
    def health(self) -> str | None:
        """The last probe's failure, None when healthy."""
        return self._last_error

    def due(self) -> bool:
        return self._clock() - self._checked >= self._ttl

    async def check(self) -> str | None:
        """Status the plugin, rotate the seed on a key ID change; the health error or None (kmsv2PluginProbe.check)."""
        async with self._lock:
            err = await self._probe()
            self._checked = self._clock()
            self._ttl = HEALTHZ_NEGATIVE_TTL if err else HEALTHZ_POSITIVE_TTL
            self._last_error = err
            return err

    async def _probe(self) -> str | None:
        try:
            st = await self._service.status()
        except grpc.RpcError as e:
            return (f"failed to perform status section of the healthz check for KMS Provider {self.name}, "
                    f"error: {rpc_error(e)}")
        errs = []
        if st.healthz != "ok":
            errs.append(f"got unexpected healthz status: {st.healthz}")
        if st.version not in API_VERSIONS:
            errs.append(f"expected KMSv2 API version v2, got {st.version}")
        else:
            self._version = self._version or st.version
            if st.version != self._version:
                errs.append(f"KMSv2 API version should not change after the initial status response version "
                            f"{self._version}, got {st.version}")
        if (kerr := validate_key_id(st.key_id)) is not None:
            errs.append(f'got invalid KMSv2 KeyID hash "{key_id_hash(st.key_id)}": {kerr}')
        elif (rerr := await self._rotate(st.key_id)) is not None:
            errs.append(rerr)
        if not errs:
            return None
        joined = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
        return f"kmsv2 Provider {self.name} is not healthy, error: {joined}"

    async def _rotate(self, status_key_id: str) -> str | None:
        """rotateDEKOnKeyIDChange: keep the seed while the key ID holds, else make a new one; on failure
        the current seed coasts until it expires."""
        state = self._state
        expires = self._clock() + WRITE_DEK_MAX_TTL
        if state is not None and state.key_id == status_key_id:
            self._state = State(state.transformer, state.key_id, state.encrypted_dek_source, state.annotations,
                                state.uid, expires, state.cache_key)
            return None
        uid = str(uuid.uuid4())
        seed = os.urandom(_INFO)
        err_gen, resp = "<nil>", None
        try:
            resp = await self._service.encrypt(uid, seed)
        except grpc.RpcError as e:
            err_gen = f"failed to encrypt DEK, error: {rpc_error(e)}"
        if resp is not None:
            o = api.EncryptedObject(b"\0", resp.key_id, resp.ciphertext, dict(resp.annotations))
            if (verr := validate(o)) is not None:
                err_gen = verr
            elif resp.key_id == status_key_id:
                transformer = SeedTransformer(seed)
                key = cache_key(o)
                self._state = State(transformer, resp.key_id, resp.ciphertext, dict(resp.annotations), uid,
                                    expires, key)
                self._remember(key, transformer)
                return None
        err_state = "<nil>" if state is not None else "got unexpected nil transformer"
        return (f'failed to rotate DEK uid="{uid}", useSeed=true, errState={err_state}, errGen={err_gen}, '
                f'statusKeyIDHash="{key_id_hash(status_key_id)}", '
                f'encryptKeyIDHash="{key_id_hash(resp.key_id if resp else "")}", '
                f'stateKeyIDHash="{key_id_hash(state.key_id if state else "")}", '
                f"expirationTimestamp={_rfc3339(state.expires if state else 0)}")

    async def close(self) -> None:
        await self._service.close()
