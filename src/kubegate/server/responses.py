"""Writing responses: objects in the negotiated form, Status errors, Warning headers."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from kubegate.api.errors import StatusError
from kubegate.server.negotiation import JSON, PROTOBUF, YAML, Output, dump_json, dump_yaml

BASE_HEADERS = {"Cache-Control": "no-cache, private"}
# Request state key of the request's warning recorder (a list of texts): warnings recorded outside the
# handler's own response (authentication, refused admission) go on whatever response is sent.
WARNINGS = "kubegate.authn_warnings"
# Upstream's recorder (endpoints/filters/warning.go): past 4096 runes in all, every warning is cut
# to 256 runes and later ones are dropped.
_WARNINGS_TOTAL_RUNES = 4096
_WARNING_RUNES = 256


def object_response(obj: Any, status: int = 200, out: Output | None = None, *,
                    json_bytes: bytes | None = None, warnings: list[str] | None = None) -> web.Response:
    fmt = out.format if out else "json"
    headers = dict(BASE_HEADERS)
    if fmt == "yaml":
        body = dump_yaml(obj)
        headers["Content-Type"] = YAML
    elif fmt == "protobuf":
        from kubegate.protobuf.codec import encode_object
        body = encode_object(obj)
        headers["Content-Type"] = PROTOBUF
    else:
        body = json_bytes if json_bytes is not None else dump_json(obj)
        headers["Content-Type"] = JSON
    resp = web.Response(body=body, status=status, headers=headers)
    for w in recorded_warnings(warnings or ()):
        resp.headers.add("Warning", warning_header(w))
    return resp


def recorded_warnings(texts: list[str] | tuple[str, ...]) -> list[str]:
    """The warnings a response carries, as upstream's recorder keeps them: empty ones and
    duplicates dropped; once the total passes 4096 runes every warning is cut to 256 runes and
    warnings stop when the cut total reaches 4096."""
    seen: set[str] = set()
    ordered: list[str] = []
    out: list[str] = []
    written = 0
    truncating = False
    for text in texts:
        if not text or (truncating and written >= _WARNINGS_TOTAL_RUNES) or text in seen:
            continue
        seen.add(text)
        ordered.append(text)
        if truncating:
            cut = text[:_WARNING_RUNES]
            written += len(cut)
            out.append(cut)
        elif written + len(text) <= _WARNINGS_TOTAL_RUNES:
            written += len(text)
            out.append(text)
        else:
            truncating = True
            out = [t[:_WARNING_RUNES] for t in ordered]
            written = sum(len(t) for t in out)
    return out


def status_response(err: StatusError, out: Output | None = None) -> web.Response:
    headers = dict(BASE_HEADERS)
    headers["Content-Type"] = JSON
    if err.code == 403:
        headers["X-Content-Type-Options"] = "nosniff"
    headers.update(err.headers)
    body = dump_yaml(err.status()) if out and out.format == "yaml" else dump_json(err.status())
    if out and out.format == "yaml":
        headers["Content-Type"] = YAML
    return web.Response(body=body, status=err.code, headers=headers)


def text_response(text: str, status: int = 200) -> web.Response:
    headers = dict(BASE_HEADERS)
    headers["Content-Type"] = "text/plain; charset=utf-8"
    headers["X-Content-Type-Options"] = "nosniff"
    return web.Response(body=text.encode(), status=status, headers=headers)


def not_found_page() -> web.Response:
    return text_response("404 page not found\n", 404)


def warning_header(text: str) -> str:
    """RFC 7234 warning as upstream writes it: code 299, agent "-", quoted text."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'
