"""Go encoding/json error texts, for the places where upstream quotes its decoder verbatim
(malformed request bodies, patches, dockercfg secrets, type mismatches)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _quote_char(c: int) -> str:
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    ch = chr(c)
    special = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\"}
    if ch in special:
        return f"'{special[ch]}'"
    if ch.isprintable():
        return f"'{ch}'"
    if c < 0x80:
        return f"'\\x{c:02x}'"
    return f"'\\u{c:04x}'"


_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_SPACE = frozenset(b" \t\r\n")


class _Scanner:
    """A byte-level JSON syntax checker producing encoding/json's SyntaxError messages."""

    def __init__(self) -> None:
        self.stack: list[str] = []  # "key" / "value" (object) or "array"
        self.state = "begin_value"
        self.literal = b""
        self.literal_pos = 0
        self.hex_left = 0
        self.end_top = False

    def _fail(self, c: int, context: str) -> str:
        return f"invalid character {_quote_char(c)} {context}"

    def step(self, c: int) -> str | None:
        st = self.state
        if st == "end_top":
            return None if c in _SPACE else self._fail(c, "after top-level value")
        if st in ("begin_value", "begin_value_or_empty", "begin_string_or_empty", "begin_string"):
            if c in _SPACE:
                return None
            if st == "begin_value_or_empty" and c == ord("]"):
                return self._end_value(c)
            if st == "begin_string_or_empty" and c == ord("}"):
                self.stack[-1] = "value"
                return self._end_value(c)
            if st in ("begin_string", "begin_string_or_empty"):
                if c == ord('"'):
                    self.state = "string"
                    return None
                return self._fail(c, "looking for beginning of object key string")
            return self._begin_value(c)
        if st == "end_value":
            return self._end_value(c)
        if st == "string":
            if c == ord('"'):
                self.state = "end_value"
            elif c == ord("\\"):
                self.state = "string_esc"
            elif c < 0x20:
                return self._fail(c, "in string literal")
            return None
        if st == "string_esc":
            if c in b'bfnrt\\/"':
                self.state = "string"
                return None
            if c == ord("u"):
                self.state, self.hex_left = "string_hex", 4
                return None
            return self._fail(c, "in string escape code")
        if st == "string_hex":
            if c not in _HEX:
                return self._fail(c, "in \\u hexadecimal character escape")
            self.hex_left -= 1
            if self.hex_left == 0:
                self.state = "string"
            return None
        if st == "literal":
            want = self.literal[self.literal_pos]
            if c != want:
                word = self.literal.decode()
                return self._fail(c, f"in literal {word} (expecting {_quote_char(want)})")
            self.literal_pos += 1
            if self.literal_pos == len(self.literal):
                self.state = "end_value"
            return None
        return self._number(st, c)

    def _number(self, st: str, c: int) -> str | None:
        if st == "neg":
            if c == ord("0"):
                self.state = "zero"
            elif c in _DIGITS:
                self.state = "int"
            else:
                return self._fail(c, "in numeric literal")
            return None
        if st == "int" and c in _DIGITS:
            return None
        if st in ("int", "zero"):
            if c == ord("."):
                self.state = "dot"
                return None
            if c in b"eE":
                self.state = "exp"
                return None
            return self._end_value(c)
        if st == "dot":
            if c in _DIGITS:
                self.state = "frac"
                return None
            return self._fail(c, "after decimal point in numeric literal")
        if st == "frac":
            if c in _DIGITS:
                return None
            if c in b"eE":
                self.state = "exp"
                return None
            return self._end_value(c)
        if st == "exp" and c in b"+-":
            self.state = "exp_sign"
            return None
        if st in ("exp", "exp_sign"):
            if c in _DIGITS:
                self.state = "exp_digits"
                return None
            return self._fail(c, "in exponent of numeric literal")
        # exp_digits
        if c in _DIGITS:
            return None
        return self._end_value(c)

    def _begin_value(self, c: int) -> str | None:
        if c == ord("{"):
            self.stack.append("key")
            self.state = "begin_string_or_empty"
        elif c == ord("["):
            self.stack.append("array")
            self.state = "begin_value_or_empty"
        elif c == ord('"'):
            self.state = "string"
        elif c == ord("-"):
            self.state = "neg"
        elif c == ord("0"):
            self.state = "zero"
        elif c in _DIGITS:
            self.state = "int"
        elif c in _LITERALS:
            self.state, self.literal, self.literal_pos = "literal", _LITERALS[c], 1
        else:
            return self._fail(c, "looking for beginning of value")
        return None

    def _end_value(self, c: int) -> str | None:
        if not self.stack:
            self.state, self.end_top = "end_top", True
            return self.step(c)
        if c in _SPACE:
            self.state = "end_value"
            return None
        top = self.stack[-1]
        if top == "key":
            if c == ord(":"):
                self.stack[-1] = "value"
                self.state = "begin_value"
                return None
            return self._fail(c, "after object key")
        if top == "value":
            if c == ord(","):
                self.stack[-1] = "key"
                self.state = "begin_string"
                return None
            if c == ord("}"):
                return self._pop()
            return self._fail(c, "after object key:value pair")
        if c == ord(","):
            self.state = "begin_value"
            return None
        if c == ord("]"):
            return self._pop()
        return self._fail(c, "after array element")

    def _pop(self) -> None:
        self.stack.pop()
        if self.stack:
            self.state = "end_value"
        else:
            self.state, self.end_top = "end_top", True
        return None


def syntax_error(data: bytes) -> str | None:
    """The SyntaxError text encoding/json's checkValid would return for data, or None when valid."""
    sc = _Scanner()
    for c in data:
        err = sc.step(c)
        if err:
            return err
    if sc.end_top:
        return None
    # Go feeds one space at EOF: it completes top-level numbers and reports half-read literals.
    err = sc.step(ord(" "))
    if err:
        return err
    return None if sc.end_top else "unexpected end of JSON input"


def json_kind(v: Any) -> str:
    """The JSON value kind Go names in an UnmarshalTypeError."""
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if v is None:
        return "null"
    return "number"


def unmarshal_object_error(data: bytes) -> str | None:
    """The error Go reports unmarshalling `data` into a map[string]interface{}, or None if it succeeds."""
    err = syntax_error(data)
    if err:
        return err
    kind = json_kind(json.loads(data))
    if kind in ("object", "null"):
        return None
    return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"


@dataclass(frozen=True)
class GoStruct:
    """The shape of a Go struct for reproducing UnmarshalTypeError texts: `type_name` as reflect
    prints it (package-qualified), `name` as the error's Struct part, fields by JSON name with
    the Go type of each ("string", "bool" or a nested GoStruct)."""

    type_name: str
    name: str
    fields: Mapping[str, str | GoStruct]


def unmarshal_type_error(value: Any, struct: GoStruct, *, fold_case: bool = False) -> str | None:
    """The first UnmarshalTypeError Go reports decoding the (syntactically valid) JSON `value` into
    `struct`, or None. Unknown keys and nulls are skipped as Go skips them; encoding/json matches
    keys case-insensitively (fold_case), apimachinery's decoder does not."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"json: cannot unmarshal {json_kind(value)} into Go value of type {struct.type_name}"
    return _struct_error(value, struct, "", fold_case)


def _struct_error(obj: dict[str, Any], struct: GoStruct, prefix: str, fold_case: bool) -> str | None:
    folded = {k.lower(): k for k in struct.fields} if fold_case else {}
    for key, v in obj.items():
        name = key if key in struct.fields else folded.get(key.lower())
        if name is None or v is None:
            continue
        typ = struct.fields[name]
        path = prefix + name
        if isinstance(typ, GoStruct):
            if not isinstance(v, dict):
                return _field_error(v, struct, path, typ.type_name)
            err = _struct_error(v, typ, path + ".", fold_case)
            if err:
                return err
        elif (typ == "string" and not isinstance(v, str)) or (typ == "bool" and not isinstance(v, bool)):
            return _field_error(v, struct, path, typ)
    return None


def _field_error(v: Any, struct: GoStruct, path: str, type_name: str) -> str:
    return f"json: cannot unmarshal {json_kind(v)} into Go struct field {struct.name}.{path} of type {type_name}"
