"""Protocol buffer wire format primitives: varints, tags and length-delimited fields (pure)."""
from __future__ import annotations

from collections.abc import Iterator

VARINT = 0
FIXED64 = 1
LEN = 2
FIXED32 = 5


class WireError(ValueError):
    """Malformed protobuf bytes."""


def encode_varint(value: int) -> bytes:
    # Negative int32/int64 are sign-extended to 64 bits, as proto2 does (10 bytes on the wire).
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise WireError("unexpected end of data in varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint overflow")


def to_signed(value: int, bits: int) -> int:
    """Reinterpret a decoded varint as a two's complement int of `bits` width."""
    value &= (1 << 64) - 1
    if bits == 32:
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value & 0x80000000 else value
    return value - (1 << 64) if value & (1 << 63) else value


def tag(number: int, wire_type: int) -> bytes:
    return encode_varint((number << 3) | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, LEN) + encode_varint(len(payload)) + payload


def varint_field(number: int, value: int) -> bytes:
    return tag(number, VARINT) + encode_varint(value)


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value): an int for varint/fixed, bytes for length-delimited."""
    pos = 0
    n = len(data)
    while pos < n:
        key, pos = decode_varint(data, pos)
        number, wt = key >> 3, key & 7
        if number == 0:
            raise WireError("illegal field number 0")
        if wt == VARINT:
            value, pos = decode_varint(data, pos)
            yield number, wt, value
        elif wt == LEN:
            size, pos = decode_varint(data, pos)
            end = pos + size
            if end > n:
                raise WireError(f"field {number}: length {size} runs past the end of data")
            yield number, wt, data[pos:end]
            pos = end
        elif wt == FIXED64:
            if pos + 8 > n:
                raise WireError("unexpected end of data in fixed64")
            yield number, wt, int.from_bytes(data[pos:pos + 8], "little")
            pos += 8
        elif wt == FIXED32:
            if pos + 4 > n:
                raise WireError("unexpected end of data in fixed32")
            yield number, wt, int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        else:
            raise WireError(f"field {number}: unsupported wire type {wt}")
