"""The plugin's key file and the key-encryption it does (pure apart from reading the file).

One key a line, `<key-id> <base64 of 32 bytes>`; `#` starts a comment. The last key writes, every key
reads: rotating is appending a line (the API server sees the new key ID at its next Status and moves to
a new seed; objects written before stay readable while their key is listed).
"""
from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


class KeyFileError(Exception):
    pass


class UnknownKey(Exception):
    pass


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, AESGCM]
    current: str

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        """(key ID, nonce ‖ AES-GCM(plaintext)); the key ID is authenticated so a ciphertext cannot be
        presented under another key."""
        nonce = os.urandom(_NONCE)
        return self.current, nonce + self.keys[self.current].encrypt(nonce, plaintext, self.current.encode())

    def decrypt(self, key_id: str, ciphertext: bytes) -> bytes:
        aead = self.keys.get(key_id)
        if aead is None:
            raise UnknownKey(f"key ID {key_id!r} is not in the key file")
        try:
            return aead.decrypt(ciphertext[:_NONCE], ciphertext[_NONCE:], key_id.encode())
        except (InvalidTag, ValueError):
            raise UnknownKey("ciphertext does not decrypt with its key") from None


def parse(text: str, path: str) -> KeyRing:
    keys: dict[str, AESGCM] = {}
    current = ""
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise KeyFileError(f"{path}:{n}: want `<key-id> <base64 key>`")
        key_id, b64 = parts
        if key_id in keys:
            raise KeyFileError(f"{path}:{n}: duplicate key ID {key_id!r}")
        try:
            key = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise KeyFileError(f"{path}:{n}: the key is not valid base64") from None
        if len(key) != 32:
            raise KeyFileError(f"{path}:{n}: the key must be 32 bytes, got {len(key)}")
        keys[key_id] = AESGCM(key)
        current = key_id
    if not keys:
        raise KeyFileError(f"{path}: no keys")
    return KeyRing(keys, current)


def new_key_line(key_id: str) -> str:
    return f"{key_id} {base64.b64encode(secrets.token_bytes(32)).decode()}\n"


def create(path: Path, key_id: str = "key-1") -> None:
    """A fresh key file readable only by its owner."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new_key_line(key_id))


class KeyFile:
    """The key file, re-read whenever it changes so a rotation needs no restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._ring: KeyRing | None = None

    def ring(self) -> KeyRing:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if self._ring is None or stamp != self._stamp:
            self._ring = parse(self.path.read_text(), str(self.path))
            self._stamp = stamp
        return self._ring
