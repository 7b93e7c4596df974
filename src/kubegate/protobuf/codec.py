"""Kubernetes protobuf <-> JSON-form dicts, driven by the schema tables.

The JSON form is what upstream's JSON serializer prints for the Go object the bytes decode to:
non-pointer scalars follow Go's omitempty, pointer fields keep explicit zero values, absent
non-pointer structs print as `{}`, nil slices and maps without omitempty print as null.
Encoding mirrors gogo-protobuf's generated marshallers (fields ascending, map keys sorted,
non-pointer fields always written).
"""
from __future__ import annotations

import base64
import binascii
import re
import struct
from datetime import datetime, timezone
from typing import Any

import orjson

from kubegate.schema import (
    DURATION, FIELDS_V1, INT_OR_STRING, MICRO_TIME, QUANTITY, RAW_EXTENSION, TIME, Definition, Field,
    definition, definition_for_gvk, definitions,
)
from kubegate.protobuf.wire import (
    FIXED64, LEN, VARINT, WireError, decode_varint, encode_varint, iter_fields, length_delimited, tag, to_signed,
    varint_field,
)

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not a valid Kubernetes protobuf message for a known kind."""


# ---------------------------------------------------------------------------------------------- envelope

def decode_object(body: bytes) -> dict[str, Any]:
    """Decode `k8s\\0` + runtime.Unknown into the object's JSON form, with apiVersion and kind set."""
    if not body.startswith(MAGIC):
        raise ProtobufError("provided data does not appear to be a protobuf message, expected prefix "
                            "[107 56 115 0]")
    try:
        api_version, kind, raw = _unwrap_unknown(body[len(MAGIC):])
    except WireError as e:
        raise ProtobufError(f"invalid protobuf envelope: {e}") from None
    if not kind:
        raise ProtobufError("object kind is not set in the protobuf envelope")
    group, _, version = api_version.rpartition("/")
    defn = definition_for_gvk(group, version, kind)
    if defn is None:
        raise ProtobufError(f"no kind \"{kind}\" is registered for version \"{api_version}\"")
    obj: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    obj.update(decode_message(defn.name, raw))
    return obj


def _unwrap_unknown(data: bytes) -> tuple[str, str, bytes]:
    api_version = kind = ""
    raw = b""
    for num, wt, val in iter_fields(data):
        if num == 1 and wt == LEN:
            assert isinstance(val, bytes)
            for n2, w2, v2 in iter_fields(val):
                if w2 == LEN and n2 in (1, 2):
                    assert isinstance(v2, bytes)
                    s = _utf8(v2, "typeMeta")
                    if n2 == 1:
                        api_version = s
                    else:
                        kind = s
        elif num == 2 and wt == LEN:
            assert isinstance(val, bytes)
            raw = val
    return api_version, kind, raw


def encode_object(obj: dict[str, Any]) -> bytes:
    """Encode a JSON-form object (apiVersion and kind set) as `k8s\\0` + runtime.Unknown."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        raise ProtobufError("object has no apiVersion/kind to encode")
    group, _, version = api_version.rpartition("/")
    defn = definition_for_gvk(group, version, kind)
    if defn is None:
        raise ProtobufError(f"no kind \"{kind}\" is registered for version \"{api_version}\"")
    raw = encode_message(defn.name, obj)
    type_meta = length_delimited(1, api_version.encode()) + length_delimited(2, kind.encode())
    unknown = (length_delimited(1, type_meta) + length_delimited(2, raw)
               + length_delimited(3, b"") + length_delimited(4, b""))
    return MAGIC + unknown


# ---------------------------------------------------------------------------------------------- decoding

def decode_message(defname: str, data: bytes) -> dict[str, Any]:
    """Decode one message of the named definition into its JSON form."""
    try:
        return _decode_struct(definition(defname), data)
    except WireError as e:
        raise ProtobufError(f"invalid protobuf for {defname.rsplit('.', 1)[-1]}: {e}") from None


def _utf8(b: bytes, what: str) -> str:
    try:
        return b.decode()
    except UnicodeDecodeError:
        raise ProtobufError(f"{what}: invalid UTF-8 in string field") from None


def _decode_struct(defn: Definition, data: bytes) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for num, wt, val in iter_fields(data):
        f = defn.by_number.get(num)
        if f is None:
            continue  # unknown fields are skipped, as gogo's generated unmarshallers do
        if f.type == "map":
            if wt != LEN:
                raise WireError(f"field {f.name}: wrong wire type {wt} for a map entry")
            assert isinstance(val, bytes)
            k, v = _decode_map_entry(f, val)
            seen.setdefault(f.name, {})[k] = v
        elif f.repeated:
            seen.setdefault(f.name, []).extend(_decode_repeated(f, wt, val))
        else:
            seen[f.name] = _decode_single(f, wt, val)
    out: dict[str, Any] = {}
    for f in defn.fields.values():
        if f.number == 0:
            continue
        if f.inline:
            out.update(seen[f.name] if f.name in seen else _decode_struct(definition(f.ref or ""), b""))
            continue
        present = f.name in seen
        value = seen[f.name] if present else None
        if present:
            if _drop_present(f, value):
                continue
            out[f.name] = value
        else:
            absent = _absent_value(f)
            if absent is not _OMIT:
                out[f.name] = absent
    return out


_OMIT = object()
_ZERO = {"string": "", "int32": 0, "int64": 0, "bool": False, "double": 0.0}


def _drop_present(f: Field, value: Any) -> bool:
    if f.pointer or f.repeated or f.type == "map":
        return False
    if f.type == "message":
        if _is_list_wrapper(f.ref):
            return f.omitempty and not value
        # Go's omitempty never drops a struct; omitzero drops a zero one (a zero Time decodes to null).
        return f.omitzero and value is None
    if f.type == "bytes":
        return f.omitempty and not value
    return f.omitempty and value == _ZERO.get(f.type)


def _absent_value(f: Field) -> Any:
    if f.pointer:
        return _OMIT
    if f.repeated or f.type in ("map", "bytes"):
        return _OMIT if f.omitempty else None
    if f.type == "message":
        if f.omitzero or (f.omitempty and _is_list_wrapper(f.ref)):
            return _OMIT
        return _special_zero(f.ref or "")
    if f.type == "object":
        return _OMIT
    return _OMIT if f.omitempty else _ZERO[f.type]


def _special_zero(ref: str) -> Any:
    if ref in (TIME, MICRO_TIME, RAW_EXTENSION, FIELDS_V1):
        return None
    if ref == QUANTITY:
        return "0"
    if ref == INT_OR_STRING:
        return 0
    if ref == DURATION:
        return "0s"
    if _is_list_wrapper(ref):
        return None  # a nil slice
    return _decode_struct(definition(ref), b"")


def _is_list_wrapper(ref: str | None) -> bool:
    return ref is not None and ref in definitions() and definitions()[ref].list_wrapper


def _scalar(typ: str, wt: int, val: int | bytes, name: str) -> Any:
    if typ == "string":
        if wt != LEN:
            raise WireError(f"field {name}: wrong wire type {wt} for a string")
        assert isinstance(val, bytes)
        return _utf8(val, name)
    if typ == "bytes":
        if wt != LEN:
            raise WireError(f"field {name}: wrong wire type {wt} for bytes")
        assert isinstance(val, bytes)
        return base64.b64encode(val).decode()
    if typ in ("int32", "int64", "bool"):
        if wt != VARINT:
            raise WireError(f"field {name}: wrong wire type {wt} for {typ}")
        assert isinstance(val, int)
        if typ == "bool":
            return val != 0
        return to_signed(val, 32 if typ == "int32" else 64)
    if typ == "double":
        if wt != FIXED64:
            raise WireError(f"field {name}: wrong wire type {wt} for double")
        assert isinstance(val, int)
        return struct.unpack("<d", val.to_bytes(8, "little"))[0]
    raise WireError(f"field {name}: type {typ} has no protobuf form")


def _decode_single(f: Field, wt: int, val: int | bytes) -> Any:
    if f.type == "message":
        if wt != LEN:
            raise WireError(f"field {f.name}: wrong wire type {wt} for a message")
        assert isinstance(val, bytes)
        return _decode_ref(f.ref or "", val)
    return _scalar(f.type, wt, val, f.name)


def _decode_repeated(f: Field, wt: int, val: int | bytes) -> list[Any]:
    if f.type in ("int32", "int64", "bool") and wt == LEN:
        # packed encoding: accepted on input even though gogo proto2 writes unpacked
        assert isinstance(val, bytes)
        items: list[Any] = []
        pos = 0
        while pos < len(val):
            v, pos = decode_varint(val, pos)
            items.append(_scalar(f.type, VARINT, v, f.name))
        return items
    return [_decode_single(f, wt, val)]


def _decode_map_entry(f: Field, data: bytes) -> tuple[str, Any]:
    key = ""
    value: Any = None
    vtype = f.map_value or "string"
    is_msg = vtype in definitions()
    for num, wt, val in iter_fields(data):
        if num == 1:
            key = _scalar(f.map_key or "string", wt, val, f.name)
        elif num == 2:
            if is_msg:
                if wt != LEN:
                    raise WireError(f"field {f.name}: wrong wire type {wt} for a map value")
                assert isinstance(val, bytes)
                value = _decode_ref(vtype, val)
            else:
                value = _scalar(vtype, wt, val, f.name)
    if value is None:
        value = _special_zero(vtype) if is_msg else ("" if vtype == "bytes" else _ZERO.get(vtype))
    return key, value


def _decode_ref(ref: str, data: bytes) -> Any:
    if ref == TIME or ref == MICRO_TIME:
        return _decode_time(data, micro=ref == MICRO_TIME)
    if ref == QUANTITY:
        s = _first(data, 1)
        return _utf8(s, "quantity") if isinstance(s, bytes) else "0"
    if ref == INT_OR_STRING:
        return _decode_int_or_string(data)
    if ref == DURATION:
        ns = _first(data, 1)
        return format_duration(to_signed(ns, 64) if isinstance(ns, int) else 0)
    if ref in (RAW_EXTENSION, FIELDS_V1):
        raw = _first(data, 1)
        return _embedded(raw if isinstance(raw, bytes) else b"")
    defn = definition(ref)
    if defn.list_wrapper:
        return _decode_struct(defn, data).get("items") or []
    return _decode_struct(defn, data)


def _first(data: bytes, number: int) -> int | bytes | None:
    found: int | bytes | None = None
    for num, _, val in iter_fields(data):
        if num == number:
            found = val
    return found


def _embedded(raw: bytes) -> Any:
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return decode_object(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtobufError("embedded object is neither JSON nor Kubernetes protobuf") from None


def _decode_int_or_string(data: bytes) -> int | str:
    typ, ival, sval = 0, 0, ""
    for num, _wt, val in iter_fields(data):
        if num == 1 and isinstance(val, int):
            typ = val
        elif num == 2 and isinstance(val, int):
            ival = to_signed(val, 32)
        elif num == 3 and isinstance(val, bytes):
            sval = _utf8(val, "intstr")
    return sval if typ == 1 else ival


def _decode_time(data: bytes, micro: bool) -> str | None:
    if not data:
        return None  # gogo writes a zero time as an empty message; Go prints it as null
    seconds, nanos = 0, 0
    for num, _, val in iter_fields(data):
        if num == 1 and isinstance(val, int):
            seconds = to_signed(val, 64)
        elif num == 2 and isinstance(val, int):
            nanos = to_signed(val, 32)
    return format_time(seconds, nanos, micro)


# ---------------------------------------------------------------------------------------------- time

def format_time(seconds: int, nanos: int, micro: bool) -> str:
    dt = datetime.fromtimestamp(seconds, tz=timezone.utc)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if micro:
        return f"{base}.{nanos // 1000:06d}Z"
    return base + "Z"


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                      r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$")


def parse_time(s: str) -> tuple[int, int]:
    """RFC 3339 -> (unix seconds, nanos)."""
    m = _RFC3339.match(s)
    if not m:
        raise ProtobufError(f"parsing time {s!r}: not RFC 3339")
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or ""
    nanos = int(frac.ljust(9, "0")) if frac else 0
    dt = datetime(y, mo, d, h, mi, sec, tzinfo=timezone.utc)
    seconds = int(dt.timestamp())
    if m.group(9):
        off = (int(m.group(10)) * 60 + int(m.group(11))) * 60
        seconds -= off if m.group(9) == "+" else -off
    return seconds, nanos


_UNITS = (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6), ("us", 10**3),
          ("µs", 10**3), ("μs", 10**3), ("ns", 1))


def format_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 10**9:
        if u < 10**3:
            s = f"{u}ns"
        elif u < 10**6:
            s = _frac(u, 10**3) + "µs"
        else:
            s = _frac(u, 10**6) + "ms"
    else:
        h, rem = divmod(u, 3600 * 10**9)
        m, rem = divmod(rem, 60 * 10**9)
        secs = _frac(rem, 10**9) + "s"
        if h:
            s = f"{h}h{m}m{secs}"
        elif m:
            s = f"{m}m{secs}"
        else:
            s = secs
    return "-" + s if neg else s


def _frac(v: int, unit: int) -> str:
    whole, rem = divmod(v, unit)
    if not rem:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{rem:0{digits}d}".rstrip("0")


_DUR_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(s: str) -> int:
    """Go's time.ParseDuration -> nanoseconds."""
    text = s
    neg = text.startswith("-")
    if text[:1] in "+-":
        text = text[1:]
    if text == "0":
        return 0
    pos, total = 0, 0
    units = dict(_UNITS)
    while pos < len(text):
        m = _DUR_PART.match(text, pos)
        if not m:
            raise ProtobufError(f"time: invalid duration {s!r}")
        num, unit = m.group(1), m.group(2)
        whole, _, frac = num.partition(".")
        total += int(whole or "0") * units[unit]
        if frac:
            total += int(frac) * units[unit] // 10 ** len(frac)
        pos = m.end()
    if not text:
        raise ProtobufError(f"time: invalid duration {s!r}")
    return -total if neg else total


# ---------------------------------------------------------------------------------------------- encoding

def encode_message(defname: str, obj: dict[str, Any]) -> bytes:
    """Encode a JSON-form dict as the named definition's message."""
    return _encode_struct(definition(defname), obj, defname)


def _encode_struct(defn: Definition, obj: Any, path: str) -> bytes:
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise ProtobufError(f"{path}: expected an object, got {type(obj).__name__}")
    out = bytearray()
    for f in sorted(defn.fields.values(), key=lambda x: x.number):
        if f.number == 0:
            continue
        if f.inline:
            out += length_delimited(f.number, _encode_struct(definition(f.ref or ""), obj, path))
            continue
        value = obj.get(f.name)
        fpath = f"{path}.{f.name}"
        if f.type == "map":
            if value is not None:
                out += _encode_map(f, value, fpath)
        elif f.repeated:
            if value is None:
                continue
            if not isinstance(value, list):
                raise ProtobufError(f"{fpath}: expected a list")
            for i, item in enumerate(value):
                out += _encode_single(f, item, f"{fpath}[{i}]")
        elif value is None and (f.pointer or _is_list_wrapper(f.ref)):
            continue  # nil pointers and nil named slices are not written
        else:
            out += _encode_single(f, value, fpath)
    return bytes(out)


def _encode_map(f: Field, value: Any, path: str) -> bytes:
    if not isinstance(value, dict):
        raise ProtobufError(f"{path}: expected an object")
    vtype = f.map_value or "string"
    out = bytearray()
    for k in sorted(value):
        v = value[k]
        if vtype in definitions():
            vb = length_delimited(2, _encode_ref(vtype, v, f"{path}.{k}"))
        else:
            vb = _encode_scalar(2, vtype, v, f"{path}.{k}")
        out += length_delimited(f.number, length_delimited(1, str(k).encode()) + vb)
    return bytes(out)


def _encode_single(f: Field, value: Any, path: str) -> bytes:
    if f.type == "message":
        return length_delimited(f.number, _encode_ref(f.ref or "", value, path))
    return _encode_scalar(f.number, f.type, value, path)


def _encode_scalar(number: int, typ: str, value: Any, path: str) -> bytes:
    if typ == "string":
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ProtobufError(f"{path}: expected a string")
        return length_delimited(number, value.encode())
    if typ == "bytes":
        try:
            raw = base64.b64decode(value or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise ProtobufError(f"{path}: illegal base64 data") from None
        return length_delimited(number, raw)
    if typ == "bool":
        if value is None:
            value = False
        if not isinstance(value, bool):
            raise ProtobufError(f"{path}: expected a boolean")
        return varint_field(number, int(value))
    if typ in ("int32", "int64"):
        if value is None:
            value = 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtobufError(f"{path}: expected an integer")
        return varint_field(number, value)
    if typ == "double":
        if value is None:
            value = 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtobufError(f"{path}: expected a number")
        return tag(number, FIXED64) + struct.pack("<d", float(value))
    raise ProtobufError(f"{path}: type {typ} has no protobuf form")


def _encode_ref(ref: str, value: Any, path: str) -> bytes:
    if ref in (TIME, MICRO_TIME):
        if value is None:
            return b""
        if not isinstance(value, str):
            raise ProtobufError(f"{path}: expected an RFC 3339 time string")
        seconds, nanos = parse_time(value)
        if ref == TIME:
            nanos = 0  # metav1.Time has second precision on the wire as in JSON
        return varint_field(1, seconds) + varint_field(2, nanos)
    if ref == QUANTITY:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        return length_delimited(1, (value if isinstance(value, str) else "0").encode())
    if ref == INT_OR_STRING:
        if isinstance(value, str):
            return varint_field(1, 1) + varint_field(2, 0) + length_delimited(3, value.encode())
        if value is None:
            value = 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtobufError(f"{path}: expected an integer or a string")
        return varint_field(1, 0) + varint_field(2, value) + length_delimited(3, b"")
    if ref == DURATION:
        ns = parse_duration(value) if isinstance(value, str) else 0
        return varint_field(1, ns)
    if ref in (RAW_EXTENSION, FIELDS_V1):
        if value is None:
            return b""
        return length_delimited(1, orjson.dumps(value))
    defn = definition(ref)
    if defn.list_wrapper:
        if not isinstance(value, list):
            raise ProtobufError(f"{path}: expected a list")
        return _encode_struct(defn, {"items": value}, path)
    return _encode_struct(defn, value, path)


__all__ = ["MAGIC", "ProtobufError", "decode_object", "encode_object", "decode_message", "encode_message",
           "format_time", "parse_time", "format_duration", "parse_duration", "encode_varint"]
