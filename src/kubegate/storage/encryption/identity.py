"""The identity provider: plaintext, but it refuses to hand out bytes that are encrypted
(upstream identity.NewEncryptCheckTransformer), so a missing provider is an error, never garbage."""
from __future__ import annotations

from .transformer import ENCRYPTED_PREFIX, TransformFailure


class IdentityTransformer:
    def to_storage(self, data: bytes, ctx: bytes) -> bytes:
        return data

    def from_storage(self, data: bytes, ctx: bytes) -> tuple[bytes, bool]:
        if data.startswith(ENCRYPTED_PREFIX):
            raise TransformFailure("identity transformer tried to read encrypted data")
        return data, False
