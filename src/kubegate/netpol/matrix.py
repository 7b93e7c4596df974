"""Truth tables for every ordered pair of pods, and their table and JSON renderings.

Rows are sources, columns destinations. Each row is a bitset: bit j set = the connection from
row i to pod j is allowed. `ingress` says what the destinations' ingress admits, `egress` what
the sources' egress admits, and the verdict is both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Matrix:
    port: int
    protocol: str
    pods: list[str]          # "namespace/name", sorted
    ingress: list[int]
    egress: list[int]

    @property
    def combined(self) -> list[int]:
        return [i & e for i, e in zip(self.ingress, self.egress)]

    def allowed(self, src: int, dst: int) -> bool:
        return bool((self.ingress[src] & self.egress[src]) >> dst & 1)

    def to_json(self) -> dict[str, Any]:
        """The `-o json` document (and the review API's matrix status)."""
        pods = self.pods
        return {"port": self.port, "protocol": self.protocol, "pods": list(pods),
                "allowed": {src: {dst: bool(row >> j & 1) for j, dst in enumerate(pods)}
                            for src, row in zip(pods, self.combined)}}

    def table(self) -> str:
        """Ingress, Egress and Combined grids, drawn as cyclonus draws them (`.` allowed, `X` denied)."""
        return "\n".join(f"{title}:\n{grid(self.pods, rows)}\n"
                         for title, rows in (("Ingress", self.ingress), ("Egress", self.egress),
                                             ("Combined", self.combined)))


def _header_title(name: str) -> str:
    """tablewriter's Title(): headers upper-cased, `_` and non-numeric `.` become spaces."""
    rs = list(name)
    for i, r in enumerate(rs):
        if r == "_":
            rs[i] = " "
        elif r == ".":
            if (i != 0 and not _num_or_space(rs[i - 1])) or (i != len(rs) - 1 and not _num_or_space(rs[i + 1])):
                rs[i] = " "
    out = "".join(rs).strip()
    if not out and name:
        out = " "
    return out.upper()


def _num_or_space(ch: str) -> bool:
    return "0" <= ch <= "9" or ch == " "


def grid(pods: list[str], rows: list[int]) -> str:
    """One tablewriter grid: header centered, cells left-aligned, borders on every row group."""
    headers = [""] + [_header_title(p) for p in pods]
    body = [[p] + ["." if row >> j & 1 else "X" for j in range(len(pods))] for p, row in zip(pods, rows)]
    widths = [max([len(headers[c])] + [len(r[c]) for r in body]) for c in range(len(headers))]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def center(s: str, w: int) -> str:
        left = (w - len(s)) // 2
        return " " * left + s + " " * (w - len(s) - left)

    lines = [sep, "| " + " | ".join(center(h, w) for h, w in zip(headers, widths)) + " |", sep]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in body]
    lines.append(sep)
    return "\n".join(lines)
