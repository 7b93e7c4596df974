"""Go encoding/json error text for `json.Unmarshal(data, &map[string]interface{}{})`.

Secret validation quotes the decoder's error verbatim (dockercfg and dockerconfigjson secrets), so a
syntax check must fail with the same words Go's scanner uses.
"""
from __future__ import annotations

_WS = b" \t\r\n"
_EOF = "unexpected end of JSON input"


class _Err(Exception):
    pass


def _quote_char(c: int) -> str:
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    ch = chr(c)
    if ch.isprintable() and c < 0x80:
        return f"'{ch}'"
    escapes = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\a": "\\a", "\v": "\\v"}
    if ch in escapes:
        return f"'{escapes[ch]}'"
    return f"'\\x{c:02x}'" if c < 0x80 else f"'\\u{c:04x}'"


class _Scanner:
    def __init__(self, data: bytes) -> None:
        self.d = data
        self.i = 0

    def peek(self) -> int:
        if self.i >= len(self.d):
            raise _Err(_EOF)
        return self.d[self.i]

    def bad(self, c: int, ctx: str) -> _Err:
        return _Err(f"invalid character {_quote_char(c)} {ctx}")

    def ws(self) -> None:
        while self.i < len(self.d) and self.d[self.i] in _WS:
            self.i += 1

    def value(self) -> str:
        self.ws()
        c = self.peek()
        if c == ord("{"):
            self.i += 1
            self.obj()
            return "object"
        if c == ord("["):
            self.i += 1
            self.arr()
            return "array"
        if c == ord('"'):
            self.i += 1
            self.string()
            return "string"
        if c == ord("-") or ord("0") <= c <= ord("9"):
            self.number()
            return "number"
        for word, kind in ((b"true", "bool"), (b"false", "bool"), (b"null", "null")):
            if c == word[0]:
                self.i += 1
                for want in word[1:]:
                    got = self.peek()
                    if got != want:
                        raise self.bad(got, f"in literal {word.decode()} (expecting {_quote_char(want)})")
                    self.i += 1
                return kind
        raise self.bad(c, "looking for beginning of value")

    def obj(self) -> None:
        self.ws()
        if self.peek() == ord("}"):
            self.i += 1
            return
        while True:
            self.ws()
            c = self.peek()
            if c != ord('"'):
                raise self.bad(c, "looking for beginning of object key string")
            self.i += 1
            self.string()
            self.ws()
            c = self.peek()
            if c != ord(":"):
                raise self.bad(c, "after object key")
            self.i += 1
            self.value()
            self.ws()
            c = self.peek()
            self.i += 1
            if c == ord("}"):
                return
            if c != ord(","):
                raise self.bad(c, "after object key:value pair")

    def arr(self) -> None:
        self.ws()
        if self.peek() == ord("]"):
            self.i += 1
            return
        while True:
            self.value()
            self.ws()
            c = self.peek()
            self.i += 1
            if c == ord("]"):
                return
            if c != ord(","):
                raise self.bad(c, "after array element")

    def string(self) -> None:
        while True:
            c = self.peek()
            self.i += 1
            if c == ord('"'):
                return
            if c < 0x20:
                raise self.bad(c, "in string literal")
            if c == ord("\\"):
                e = self.peek()
                self.i += 1
                if e == ord("u"):
                    for _ in range(4):
                        h = self.peek()
                        if not chr(h) in "0123456789abcdefABCDEF":
                            raise self.bad(h, "in \\u hexadecimal character escape")
                        self.i += 1
                elif chr(e) not in '"\\/bfnrt':
                    raise self.bad(e, "in string escape code")

    def _digits(self) -> None:
        while self.i < len(self.d) and ord("0") <= self.d[self.i] <= ord("9"):
            self.i += 1

    def number(self) -> None:
        if self.peek() == ord("-"):
            self.i += 1
            c = self.peek()
            if not ord("0") <= c <= ord("9"):
                raise self.bad(c, "in numeric literal")
        if self.peek() == ord("0"):
            self.i += 1
        else:
            self._digits()
        if self.i < len(self.d) and self.d[self.i] == ord("."):
            self.i += 1
            c = self.peek()
            if not ord("0") <= c <= ord("9"):
                raise self.bad(c, "after decimal point in numeric literal")
            self._digits()
        if self.i < len(self.d) and self.d[self.i] in b"eE":
            self.i += 1
            if self.peek() in b"+-":
                self.i += 1
            c = self.peek()
            if not ord("0") <= c <= ord("9"):
                raise self.bad(c, "in exponent of numeric literal")
            self._digits()


def unmarshal_object_error(data: bytes) -> str | None:
    """The error Go reports unmarshalling `data` into a map[string]interface{}, or None if it succeeds."""
    s = _Scanner(data)
    try:
        kind = s.value()
        s.ws()
        if s.i < len(data):
            raise s.bad(data[s.i], "after top-level value")
    except _Err as e:
        return str(e)
    if kind in ("object", "null"):
        return None
    return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
