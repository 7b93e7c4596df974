"""aesgcm: 12-byte random nonce ‖ AES-GCM(data) with the storage key as authenticated data, as
upstream's aes GCM transformer: a value moved to another key or changed in any bit fails to read."""
from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .transformer import TransformFailure

_NONCE = 12


class GCMTransformer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def to_storage(self, data: bytes, ctx: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, data, ctx)

    def from_storage(self, data: bytes, ctx: bytes) -> tuple[bytes, bool]:
        if len(data) < _NONCE:
            raise TransformFailure("the stored data was shorter than the required size")
        try:
            return self._aead.decrypt(data[:_NONCE], data[_NONCE:], ctx), False
        except InvalidTag:
            raise TransformFailure("cipher: message authentication failed") from None
