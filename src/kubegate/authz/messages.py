"""The 403 an authorization denial produces (upstream responsewriters.Forbidden + apierrors.NewForbidden)."""
from __future__ import annotations

import unicodedata

from kubegate.api.errors import StatusError, forbidden
from kubegate.authz.types import Attributes

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}


def _printable(c: str) -> bool:
    return unicodedata.category(c)[0] not in ("C", "Z") or c == " "


def go_quote(s: str) -> str:
    """Go's %q (strconv.Quote): printable runes kept, the rest escaped."""
    out = ['"']
    for c in s:
        if c in _GO_ESCAPES:
            out.append(_GO_ESCAPES[c])
        elif _printable(c):
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)


def forbidden_reason_text(attrs: Attributes) -> str:
    """The inner sentence: who cannot do what, where."""
    user = go_quote(attrs.user.name)
    if not attrs.resource_request:
        return f"User {user} cannot {attrs.verb} path {go_quote(attrs.path)}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if attrs.namespace:
        return (f"User {user} cannot {attrs.verb} resource {go_quote(resource)} in API group "
                f"{go_quote(attrs.api_group)} in the namespace {go_quote(attrs.namespace)}")
    return (f"User {user} cannot {attrs.verb} resource {go_quote(resource)} in API group "
            f"{go_quote(attrs.api_group)} at the cluster scope")


def forbidden_message(attrs: Attributes, reason: str) -> StatusError:
    """The complete 403 Status for a denied request; `reason` is the authorizer's (may be empty)."""
    inner = forbidden_reason_text(attrs)
    if reason:
        inner = f"{inner}: {reason}"
    err = forbidden(attrs.resource, attrs.name, inner, attrs.api_group)
    # StatusDetails fields are omitempty, so a non-resource denial carries `"details": {}`.
    err.details = {k: v for k, v in (err.details or {}).items() if v}
    err.headers["X-Content-Type-Options"] = "nosniff"
    return err
