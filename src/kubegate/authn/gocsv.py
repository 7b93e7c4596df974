"""Go's encoding/csv reader as upstream's token and password files use it (FieldsPerRecord -1,
strict quotes, no comments, no space trimming), so a file kube-apiserver accepts is read the same
way and a file it rejects fails with the same message.

Go works on bytes: columns in error messages are 1-based byte offsets, `\\r\\n` becomes `\\n`, blank
lines are skipped, a quoted field may span lines.
"""
from __future__ import annotations

from collections.abc import Iterator

_BARE_QUOTE = 'bare " in non-quoted-field'
_QUOTE = 'extraneous or missing " in quoted-field'


class CSVError(ValueError):
    """A csv.ParseError, with Go's Error() text."""


def _parse_error(start_line: int, line: int, column: int, err: str) -> CSVError:
    if start_line != line:
        return CSVError(f"record on line {start_line}; parse error on line {line}, column {column}: {err}")
    return CSVError(f"parse error on line {line}, column {column}: {err}")


def _len_nl(b: bytes) -> int:
    return 1 if b.endswith(b"\n") else 0


class _Lines:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._off = 0
        self.num = 0

    def read(self) -> tuple[bytes, bool]:
        """readLine: the next line with its "\\n", and whether the input was already exhausted."""
        self.num += 1
        if self._off >= len(self._data):
            return b"", True
        end = self._data.find(b"\n", self._off)
        if end < 0:
            line = self._data[self._off:]
            self._off = len(self._data)
            if line.endswith(b"\r"):
                line = line[:-1]
        else:
            line = self._data[self._off:end + 1]
            self._off = end + 1
        if line.endswith(b"\r\n"):
            line = line[:-2] + b"\n"
        return line, False


def records(data: bytes) -> Iterator[list[str]]:
    """Yields each record's fields; raises CSVError when it reaches a malformed record (as Go's
    Read does, records before it are yielded first). Invalid UTF-8 is kept via surrogateescape."""
    lines = _Lines(data)
    while True:
        line, eof = lines.read()
        while not eof and len(line) == _len_nl(line):
            line, eof = lines.read()
        if eof:
            return
        yield [f.decode("utf-8", "surrogateescape") for f in _record(lines, line)]


def _record(lines: _Lines, line: bytes) -> list[bytes]:
    rec_line = lines.num
    fields: list[bytes] = []
    pos_line, col = lines.num, 1
    while True:
        if not line or line[0] != 0x22:  # an unquoted field
            i = line.find(b",")
            field = line[:i] if i >= 0 else line[:len(line) - _len_nl(line)]
            j = field.find(b'"')
            if j >= 0:
                raise _parse_error(rec_line, lines.num, col + j, _BARE_QUOTE)
            fields.append(field)
            if i < 0:
                return fields
            line = line[i + 1:]
            col += i + 1
            continue
        line = line[1:]
        col += 1
        buf = bytearray()
        while True:  # a quoted field, possibly over several lines
            i = line.find(b'"')
            if i >= 0:
                buf += line[:i]
                line = line[i + 1:]
                col += i + 1
                if line[:1] == b'"':
                    buf += b'"'
                    line = line[1:]
                    col += 1
                    continue
                if line[:1] == b",":
                    line = line[1:]
                    col += 1
                    fields.append(bytes(buf))
                    break
                if _len_nl(line) == len(line):
                    fields.append(bytes(buf))
                    return fields
                raise _parse_error(rec_line, lines.num, col - 1, _QUOTE)
            if not line:
                raise _parse_error(rec_line, pos_line, col, _QUOTE)
            buf += line
            col += len(line)
            line, _ = lines.read()
            if line:
                pos_line += 1
                col = 1
