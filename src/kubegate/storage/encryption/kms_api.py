"""The KMS v2 wire messages: upstream's k8s.io/kms/apis/v2 service (Status, Encrypt, Decrypt) and the
EncryptedObject stored after the `k8s:enc:kms:v2:<name>:` prefix
(apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2/api.proto), hand-coded on the protobuf wire
primitives so nothing is generated at build time. Both the server's client and the bundled plugin use them."""
from __future__ import annotations

from dataclasses import dataclass, field

from kubegate.protobuf.wire import LEN, VARINT, WireError, iter_fields, length_delimited, varint_field

SERVICE = "v2.KeyManagementService"
STATUS, ENCRYPT, DECRYPT = (f"/{SERVICE}/{m}" for m in ("Status", "Encrypt", "Decrypt"))

AES_GCM_KEY = 0
HKDF_SHA256_XNONCE_AES_GCM_SEED = 1


def _bytes(number: int, value: bytes) -> bytes:
    return length_delimited(number, value) if value else b""


def _str(number: int, value: str) -> bytes:
    return _bytes(number, value.encode())


def _map(number: int, values: dict[str, bytes]) -> bytes:
    # map<string, bytes>: a repeated entry message {1: key, 2: value}
    return b"".join(length_delimited(number, _str(1, k) + _bytes(2, v)) for k, v in sorted(values.items()))


def _fields(data: bytes, spec: dict[int, int]) -> dict[int, list[int | bytes]]:
    """Field number -> values, checking each known field's wire type; unknown fields are skipped (proto3)."""
    out: dict[int, list[int | bytes]] = {}
    try:
        for number, wt, value in iter_fields(data):
            want = spec.get(number)
            if want is None:
                continue
            if wt != want:
                raise WireError(f"field {number}: wire type {wt}")
            out.setdefault(number, []).append(value)
    except WireError:
        # the text Go's protobuf runtime gives for any malformed message
        raise WireError("proto: cannot parse invalid wire-format data") from None
    return out


def _last_bytes(f: dict[int, list[int | bytes]], number: int) -> bytes:
    values = f.get(number)
    return bytes(values[-1]) if values else b""  # type: ignore[arg-type]


def _last_str(f: dict[int, list[int | bytes]], number: int) -> str:
    try:
        return _last_bytes(f, number).decode()
    except UnicodeDecodeError:
        raise WireError("proto: cannot parse invalid wire-format data") from None


def _decode_map(f: dict[int, list[int | bytes]], number: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for entry in f.get(number, []):
        e = _fields(bytes(entry), {1: LEN, 2: LEN})  # type: ignore[arg-type]
        out[_last_str(e, 1)] = _last_bytes(e, 2)
    return out


@dataclass(frozen=True)
class StatusResponse:
    version: str
    healthz: str
    key_id: str

    def encode(self) -> bytes:
        return _str(1, self.version) + _str(2, self.healthz) + _str(3, self.key_id)

    @classmethod
    def decode(cls, data: bytes) -> StatusResponse:
        f = _fields(data, {1: LEN, 2: LEN, 3: LEN})
        return cls(_last_str(f, 1), _last_str(f, 2), _last_str(f, 3))


@dataclass(frozen=True)
class EncryptRequest:
    plaintext: bytes
    uid: str

    def encode(self) -> bytes:
        return _bytes(1, self.plaintext) + _str(2, self.uid)

    @classmethod
    def decode(cls, data: bytes) -> EncryptRequest:
        f = _fields(data, {1: LEN, 2: LEN})
        return cls(_last_bytes(f, 1), _last_str(f, 2))


@dataclass(frozen=True)
class EncryptResponse:
    ciphertext: bytes
    key_id: str
    annotations: dict[str, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        return _bytes(1, self.ciphertext) + _str(2, self.key_id) + _map(3, self.annotations)

    @classmethod
    def decode(cls, data: bytes) -> EncryptResponse:
        f = _fields(data, {1: LEN, 2: LEN, 3: LEN})
        return cls(_last_bytes(f, 1), _last_str(f, 2), _decode_map(f, 3))


@dataclass(frozen=True)
class DecryptRequest:
    ciphertext: bytes
    uid: str
    key_id: str
    annotations: dict[str, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        return _bytes(1, self.ciphertext) + _str(2, self.uid) + _str(3, self.key_id) + _map(4, self.annotations)

    @classmethod
    def decode(cls, data: bytes) -> DecryptRequest:
        f = _fields(data, {1: LEN, 2: LEN, 3: LEN, 4: LEN})
        return cls(_last_bytes(f, 1), _last_str(f, 2), _last_str(f, 3), _decode_map(f, 4))


@dataclass(frozen=True)
class DecryptResponse:
    plaintext: bytes

    def encode(self) -> bytes:
        return _bytes(1, self.plaintext)

    @classmethod
    def decode(cls, data: bytes) -> DecryptResponse:
        return cls(_last_bytes(_fields(data, {1: LEN}), 1))


@dataclass(frozen=True)
class EncryptedObject:
    encrypted_data: bytes
    key_id: str
    encrypted_dek_source: bytes
    annotations: dict[str, bytes] = field(default_factory=dict)
    encrypted_dek_source_type: int = HKDF_SHA256_XNONCE_AES_GCM_SEED

    def encode(self) -> bytes:
        t = self.encrypted_dek_source_type
        return (_bytes(1, self.encrypted_data) + _str(2, self.key_id) + _bytes(3, self.encrypted_dek_source)
                + _map(4, self.annotations) + (varint_field(5, t) if t else b""))

    @classmethod
    def decode(cls, data: bytes) -> EncryptedObject:
        f = _fields(data, {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: VARINT})
        kind = f.get(5, [AES_GCM_KEY])[-1]
        return cls(_last_bytes(f, 1), _last_str(f, 2), _last_bytes(f, 3), _decode_map(f, 4), int(kind))
