"""Content negotiation: request bodies (JSON, YAML, protobuf) and the Accept header."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from kubegate.api import errors
from kubegate.api.gojson import syntax_error

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
ACCEPTED_BODY_TYPES = f"{JSON}, {YAML}, {PROTOBUF}"

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


@dataclass(frozen=True)
class MediaType:
    type: str                       # e.g. application/json
    params: dict[str, str] = field(default_factory=dict)

    @property
    def as_kind(self) -> str:
        return self.params.get("as", "")


def parse_media_type(value: str) -> MediaType:
    parts = [p.strip() for p in value.split(";")]
    params: dict[str, str] = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return MediaType(parts[0].lower(), params)


def parse_accept(header: str | None) -> list[MediaType]:
    if not header:
        return [MediaType("*/*")]
    out = []
    for item in header.split(","):
        item = item.strip()
        if item:
            mt = parse_media_type(item)
            if mt.params.get("q") == "0":
                continue
            out.append(mt)
    return out or [MediaType("*/*")]


@dataclass(frozen=True)
class Output:
    """What to send back: a serialization and, for JSON, an optional transformed kind."""

    format: str                     # "json" | "yaml" | "protobuf"
    as_kind: str = ""               # "", "Table", "PartialObjectMetadata", "PartialObjectMetadataList"
    as_version: str = ""            # meta.k8s.io version for Table (v1 or v1beta1)


_FORMATS = {JSON: "json", YAML: "yaml", PROTOBUF: "protobuf", "*/*": "json", "application/*": "json"}
_AS_KINDS = {"Table", "PartialObjectMetadata", "PartialObjectMetadataList"}


def negotiate_object(accept: str | None, *, allow_transform: bool = True, protobuf: bool = True) -> Output:
    """Pick the response form for an API object; 406 when nothing offered is acceptable.

    protobuf=False for kinds kubegate has no schema table for (they cannot be encoded as protobuf).
    """
    for mt in parse_accept(accept):
        fmt = _FORMATS.get(mt.type)
        if fmt is None or (fmt == "protobuf" and not protobuf):
            continue
        kind = mt.as_kind
        if kind:
            if not allow_transform or kind not in _AS_KINDS or mt.params.get("g") != "meta.k8s.io":
                continue
            if mt.params.get("v") not in ("v1", "v1beta1") or fmt != "json":
                continue
            return Output("json", kind, mt.params["v"])
        # kubectl offers protobuf first, with JSON as fallback: JSON is cheaper for us to produce.
        if fmt == "protobuf" and any(_FORMATS.get(m.type) == "json" and not m.as_kind
                                     for m in parse_accept(accept)):
            return Output("json")
        return Output(fmt)
    offered = ACCEPTED_BODY_TYPES if protobuf else f"{JSON}, {YAML}"
    raise errors.StatusError(
        406, "NotAcceptable",
        f"406: Not Acceptable\n\nAvailable representations: {offered}", {})


def decode_body(content_type: str | None, body: bytes) -> tuple[Any, str]:
    """Decode a create/update body; returns (object, format). Raises 415 or 400."""
    mt = parse_media_type(content_type or JSON)
    if mt.type in (JSON, "", "*/*"):
        return _json(body), "json"
    if mt.type in (YAML, "application/x-yaml", "text/yaml"):
        try:
            return yaml.load(body, Loader=_YAML_LOADER), "yaml"
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error converting YAML to JSON: {e}") from None
    if mt.type == PROTOBUF:
        from kubegate.protobuf.codec import ProtobufError, decode_object
        try:
            return decode_object(body), "protobuf"
        except ProtobufError as e:
            raise errors.bad_request(f"the object provided is unrecognized: {e}") from None
    raise errors.unsupported_media_type(ACCEPTED_BODY_TYPES)


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        # Upstream quotes the first 30 bytes of the body after the decoder's error.
        snippet = body[:30].decode("utf-8", "replace")
        raise errors.bad_request(
            f"couldn't get version/kind; json parse error: {syntax_error(body) or e} ({snippet} ...)") from None


def dump_json(obj: Any) -> bytes:
    return orjson.dumps(obj)


def dump_yaml(obj: Any) -> bytes:
    return yaml.dump(obj, Dumper=_YAML_DUMPER, default_flow_style=False, sort_keys=True,
                     allow_unicode=True).encode()


_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
