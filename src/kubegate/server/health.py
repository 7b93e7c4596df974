"""/livez, /readyz and /healthz with upstream's text format and ?verbose / ?exclude handling."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

Check = Callable[[], str | None]  # returns None when healthy, else the failure reason


@dataclass
class HealthEndpoint:
    name: str                        # livez | readyz | healthz
    checks: list[tuple[str, Check]]
    # Lines that do not fail the endpoint but show in ?verbose as "[!]<text>" (kubegate's addition).
    warnings: Callable[[], list[str]] | None = None

    def render(self, subpath: str, query: Mapping[str, str], excludes: list[str]) -> tuple[int, str] | None:
        """(status, body) or None when the sub-check does not exist (404 page)."""
        if subpath:
            for name, check in self.checks:
                if name == subpath:
                    err = check()
                    return (200, "ok") if err is None else (500, f"internal server error: {err}\n")
            return None
        verbose = "verbose" in query
        lines = []
        failed = False
        for name, check in self.checks:
            if name in excludes:
                lines.append(f"[+]{name} excluded: ok")
                continue
            err = check()
            if err is None:
                lines.append(f"[+]{name} ok")
            else:
                failed = True
                lines.append(f"[-]{name} failed: reason withheld")
        if failed:
            return 500, "\n".join(lines) + f"\n{self.name} check failed\n"
        if verbose:
            lines += [f"[!]{w}" for w in (self.warnings() if self.warnings else [])]
            return 200, "\n".join(lines) + f"\n{self.name} check passed\n"
        return 200, "ok"
