"""aescbc: 16-byte random IV ‖ AES-CBC(PKCS#7(data)), as upstream's aes CBC transformer.

CBC authenticates nothing (upstream does not either; the format is fixed), so a tampered value is
caught only as far as block size and padding allow; the JSON decode above the store catches the
rest. aesgcm and secretbox authenticate every byte."""
from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .transformer import TransformFailure

_BLOCK = 16


class CBCTransformer:
    def __init__(self, key: bytes) -> None:
        self._algo = algorithms.AES(key)

    def to_storage(self, data: bytes, ctx: bytes) -> bytes:
        iv = os.urandom(_BLOCK)
        pad = _BLOCK - len(data) % _BLOCK
        enc = Cipher(self._algo, modes.CBC(iv)).encryptor()
        return iv + enc.update(data + bytes([pad]) * pad) + enc.finalize()

    def from_storage(self, data: bytes, ctx: bytes) -> tuple[bytes, bool]:
        if len(data) < _BLOCK:
            raise TransformFailure("the stored data was shorter than the required size")
        iv, body = data[:_BLOCK], data[_BLOCK:]
        if len(body) % _BLOCK != 0:
            raise TransformFailure("the stored data is not a multiple of the block size")
        dec = Cipher(self._algo, modes.CBC(iv)).decryptor()
        out = dec.update(body) + dec.finalize()
        if not out:
            raise TransformFailure("invalid PKCS7 data (empty or not padded)")
        pad = out[-1]
        if pad == 0 or pad > _BLOCK or out[-pad:] != bytes([pad]) * pad:
            raise TransformFailure("invalid padding on input")
        return out[:-pad], False
