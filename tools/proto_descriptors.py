"""Upstream's generated.proto descriptors, recovered from a Go binary that registers them.

gogo-protobuf registers every `generated.proto` as a gzipped FileDescriptorProto, so the binary
holds one gzip member per proto file. Decoding them gives every message's fields with their
numbers, wire types, labels, map entries and gogoproto options.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from kubegate.protobuf.wire import LEN, iter_fields

_GZIP_MEMBER = re.compile(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00")
# descriptor.proto FieldDescriptorProto.Type values we map to schema types
PROTO_TYPES = {1: "double", 3: "int64", 5: "int32", 8: "bool", 9: "string", 11: "message", 12: "bytes"}
_LABEL_REPEATED = 3
_GOGO_NULLABLE = 65001
_GOGO_CUSTOMNAME = 65004
_GOGO_CASTTYPE = 65007
_MESSAGE_OPTIONS = 7
_MAP_ENTRY = 7          # MessageOptions.map_entry


@dataclass(frozen=True)
class ProtoField:
    name: str
    number: int
    type: str                 # one of PROTO_TYPES' values
    type_name: str            # message fields: fully qualified, without the leading dot
    repeated: bool
    nullable: bool            # gogoproto.nullable: False means the Go field is a value, not a pointer
    go_name: str
    casttype: str


@dataclass(frozen=True)
class ProtoMessage:
    full_name: str            # e.g. k8s.io.api.core.v1.PodSpec
    fields: tuple[ProtoField, ...]
    map_entry: bool
    go_package: str


def _s(v: int | bytes) -> str:
    return v.decode() if isinstance(v, bytes) else ""


def find_file_descriptors(binary: bytes) -> dict[str, bytes]:
    """Proto file name -> serialized FileDescriptorProto, for every k8s.io proto in the binary."""
    out: dict[str, bytes] = {}
    for m in _GZIP_MEMBER.finditer(binary):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(binary[m.start():m.start() + 4_000_000])
        except zlib.error:
            continue
        if raw[:1] != b"\n":
            continue
        name = raw[2:2 + raw[1]]
        if name.startswith(b"k8s.io/") and name.endswith(b".proto"):
            out[name.decode()] = raw
    return out


def _options(data: bytes) -> dict[int, int | bytes]:
    return {n: v for n, _, v in iter_fields(data)}


def _field(data: bytes) -> ProtoField:
    vals: dict[int, int | bytes] = {}
    for n, _, v in iter_fields(data):
        vals[n] = v
    opts = _options(vals[8]) if isinstance(vals.get(8), bytes) else {}
    ftype = vals.get(5, 0)
    assert isinstance(ftype, int)
    if ftype not in PROTO_TYPES:
        raise ValueError(f"field {_s(vals.get(1, b''))}: proto type {ftype} is not used by Kubernetes")
    return ProtoField(
        name=_s(vals.get(1, b"")), number=int(vals.get(3, 0)), type=PROTO_TYPES[ftype],
        type_name=_s(vals.get(6, b"")).lstrip("."), repeated=vals.get(4) == _LABEL_REPEATED,
        nullable=opts.get(_GOGO_NULLABLE, 1) != 0, go_name=_s(opts.get(_GOGO_CUSTOMNAME, b"")),
        casttype=_s(opts.get(_GOGO_CASTTYPE, b"")))


def _messages(data: bytes, prefix: str, go_package: str, out: dict[str, ProtoMessage]) -> None:
    name = ""
    fields: list[ProtoField] = []
    nested: list[bytes] = []
    map_entry = False
    for n, wt, v in iter_fields(data):
        if wt != LEN or not isinstance(v, bytes):
            continue
        if n == 1:
            name = v.decode()
        elif n == 2:
            fields.append(_field(v))
        elif n == 3:
            nested.append(v)
        elif n == _MESSAGE_OPTIONS:
            map_entry = _options(v).get(_MAP_ENTRY) == 1
    full = f"{prefix}.{name}"
    out[full] = ProtoMessage(full, tuple(fields), map_entry, go_package)
    for sub in nested:
        _messages(sub, full, go_package, out)


def parse_file(raw: bytes) -> dict[str, ProtoMessage]:
    """Every message (nested ones included) of one FileDescriptorProto, by full proto name."""
    package = go_package = ""
    bodies: list[bytes] = []
    for n, wt, v in iter_fields(raw):
        if wt != LEN or not isinstance(v, bytes):
            continue
        if n == 2:
            package = v.decode()
        elif n == 4:
            bodies.append(v)
        elif n == 8:
            go_package = _s(_options(v).get(11, b""))
    out: dict[str, ProtoMessage] = {}
    for body in bodies:
        _messages(body, package, go_package, out)
    return out


def read_messages(binary: bytes) -> dict[str, ProtoMessage]:
    out: dict[str, ProtoMessage] = {}
    for raw in find_file_descriptors(binary).values():
        out.update(parse_file(raw))
    return out
