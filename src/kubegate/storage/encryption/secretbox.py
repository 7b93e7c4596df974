"""secretbox: 24-byte random nonce ‖ NaCl secretbox (XSalsa20-Poly1305), as upstream's secretbox
transformer (no authenticated data)."""
from __future__ import annotations

import os

from nacl.bindings import crypto_secretbox, crypto_secretbox_open
from nacl.exceptions import CryptoError

from .transformer import TransformFailure

_NONCE = 24


class SecretboxTransformer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def to_storage(self, data: bytes, ctx: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + crypto_secretbox(data, nonce, self._key)

    def from_storage(self, data: bytes, ctx: bytes) -> tuple[bytes, bool]:
        if len(data) < _NONCE:
            raise TransformFailure("the stored data was shorter than the required size")
        try:
            return crypto_secretbox_open(data[_NONCE:], data[:_NONCE], self._key), False
        except CryptoError:
            raise TransformFailure("attempted to decrypt an invalid value") from None
