"""Generate src/kubegate/schema/definitions.json from abridged upstream type facts.

Usage: .venv/bin/python tools/gen_schema.py SRC_DIR [OUT]

SRC_DIR holds `*.facts` files: abridged transcriptions of upstream's `types.go` struct tags
(kubernetes/api, kubernetes/apimachinery), one file per API package:

    package io.k8s.api.core.v1          # OpenAPI prefix of the proto package k8s.io.api.core.v1
    gv - v1                              # group ("-" = core) and version, for top-level kinds
    import meta=io.k8s.apimachinery.pkg.apis.meta.v1
    @Pod kind                            # a struct; "kind" marks a top-level kind of this gv
    metadata,omitempty meta.ObjectMeta 1 # json tag, Go type, protobuf field number, then markers:
    containers []Container 2 ps=merge pk=name lt=map lk=name

Go types: string int32 int64 bool float64 []byte, `*T` pointer, `[]T` repeated, `map[string]T`,
`alias.Name` for another package, and the special types Time MicroTime Duration FieldsV1
Quantity IntOrString RawExtension. Named string/int types are written as their base type.
Descriptions come from the installed `kubernetes` Python client's models (generated from the same
doc comments), because copying every comment by hand is error-prone.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
SPECIAL: dict[str, str] = {
    "Time": f"{META}.Time",
    "MicroTime": f"{META}.MicroTime",
    "Duration": f"{META}.Duration",
    "FieldsV1": f"{META}.FieldsV1",
    "Quantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "IntOrString": "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "RawExtension": "io.k8s.apimachinery.pkg.runtime.RawExtension",
}
SCALARS = {"string": "string", "int32": "int32", "int64": "int64", "bool": "bool",
           "float64": "double", "[]byte": "bytes", "any": "object"}

# Special types: their wire form (a message) plus a description; their JSON form is handled by the codec.
SPECIAL_DEFS: dict[str, dict[str, Any]] = {
    f"{META}.Time": {"description": "Time is a wrapper around time.Time which supports correct marshaling to "
                     "YAML and JSON.  Wrappers are provided for many of the factory methods that the time "
                     "package offers.", "fields": [("seconds", 1, "int64"), ("nanos", 2, "int32")]},
    f"{META}.MicroTime": {"description": "MicroTime is version of Time with microsecond level precision.",
                          "fields": [("seconds", 1, "int64"), ("nanos", 2, "int32")]},
    f"{META}.Duration": {"description": "Duration is a wrapper around time.Duration which supports correct "
                         "marshaling to YAML and JSON. In particular, it marshals into strings, which can be "
                         "used as map keys in json.", "fields": [("duration", 1, "int64")]},
    f"{META}.FieldsV1": {"description": "FieldsV1 stores a set of fields in a data structure like a Trie, in "
                         "JSON format.\n\nEach key is either a '.' representing the field itself, and will always "
                         "map to an empty set, or a string representing a sub-field or item. The string will "
                         "follow one of these four formats: 'f:<name>', where <name> is the name of a field in a "
                         "struct, or key in a map 'v:<value>', where <value> is the exact json formatted value "
                         "of a list item 'i:<index>', where <index> is position of a item in a list 'k:<keys>', "
                         "where <keys> is a map of  a list item's key fields to their unique values If a key "
                         "maps to an empty Fields value, the field that key represents is part of the set.\n\n"
                         "The exact format is defined in sigs.k8s.io/structured-merge-diff",
                         "fields": [("Raw", 1, "bytes")]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "Quantity is a fixed-point representation of a number. It provides convenient "
                       "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() "
                       "accessors.", "fields": [("string", 1, "string")]},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
                       "marshalling and unmarshalling, it produces or consumes the inner type.  This allows "
                       "you to have, for example, a JSON field that can accept a name or number.",
        "fields": [("type", 1, "int64"), ("intVal", 2, "int32"), ("strVal", 3, "string")]},
    "io.k8s.apimachinery.pkg.runtime.RawExtension": {
        "description": "RawExtension is used to hold extensions in external versions.",
        "fields": [("raw", 1, "bytes")]},
    "io.k8s.apimachinery.pkg.runtime.Unknown": {
        "description": "Unknown allows api objects with unknown types to be passed-through.",
        "fields": [("typeMeta", 1, f"{'io.k8s.apimachinery.pkg.runtime'}.TypeMeta"), ("raw", 2, "bytes"),
                   ("contentEncoding", 3, "string"), ("contentType", 4, "string")]},
    "io.k8s.apimachinery.pkg.runtime.TypeMeta": {
        "description": "TypeMeta is shared by all top level objects.",
        "fields": [("apiVersion", 1, "string"), ("kind", 2, "string")]},
}

_LINE = re.compile(r"^(\S*)\s+(\S+)\s+(\d+)((?:\s+\S+)*)$")


def _field(name: str, number: int, typ: str, ref: str | None = None, repeated: bool = False,
           pointer: bool = False, omitempty: bool = False, **extra: Any) -> dict[str, Any]:
    f: dict[str, Any] = {"name": name, "number": number, "type": typ, "ref": ref, "repeated": repeated,
                         "pointer": pointer, "omitempty": omitempty, "description": "",
                         "patchStrategy": None, "patchMergeKey": None, "listType": None, "listMapKeys": None}
    f.update(extra)
    return f


def _resolve(goname: str, pkg: str, imports: dict[str, str]) -> tuple[str, str | None]:
    """Go element type -> (type, ref)."""
    if goname in SCALARS:
        return SCALARS[goname], None
    if goname in SPECIAL:
        return "message", SPECIAL[goname]
    if "." in goname:
        alias, name = goname.split(".", 1)
        if name in SPECIAL:
            return "message", SPECIAL[name]
        return "message", f"{imports[alias]}.{name}"
    return "message", f"{pkg}.{goname}"


def parse_facts(text: str) -> dict[str, dict[str, Any]]:
    pkg = ""
    group: str | None = None
    version = ""
    imports = {"meta": META}
    defs: dict[str, dict[str, Any]] = {}
    cur: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if line.startswith("package "):
            pkg = line.split()[1]
        elif line.startswith("gv "):
            _, g, version = line.split()
            group = "" if g == "-" else g
        elif line.startswith("import "):
            alias, target = line.split()[1].split("=", 1)
            imports[alias] = target
        elif line.startswith("@"):
            parts = line[1:].split()
            cur = {"description": "", "gvk": [], "fields": []}
            if "kind" in parts[1:] and group is not None:
                cur["gvk"].append({"group": group, "version": version, "kind": parts[0]})
            defs[f"{pkg}.{parts[0]}"] = cur
        else:
            m = _LINE.match(line.strip())
            if not m or cur is None:
                raise ValueError(f"cannot parse fact line: {raw!r}")
            tag, gotype, num, rest = m.group(1), m.group(2), int(m.group(3)), m.group(4).split()
            cur["fields"].append(_parse_field(tag, gotype, num, rest, pkg, imports))
    return defs


def _parse_field(tag: str, gotype: str, num: int, markers: list[str], pkg: str,
                 imports: dict[str, str]) -> dict[str, Any]:
    opts = tag.split(",")
    name, flags = opts[0], set(opts[1:])
    pointer = gotype.startswith("*")
    t = gotype.lstrip("*")
    repeated = False
    extra: dict[str, Any] = {}
    if t.startswith("map[string]"):
        vtype, vref = _resolve(t[len("map[string]"):], pkg, imports)
        typ, ref = "map", None
        extra["mapKey"] = "string"
        extra["mapValue"] = vref if vtype == "message" else vtype
    elif t.startswith("[]") and t != "[]byte":
        repeated = True
        typ, ref = _resolve(t[2:], pkg, imports)
    else:
        typ, ref = _resolve(t, pkg, imports)
    if "inline" in flags:
        extra["inline"] = True
        name = (ref or "").rsplit(".", 1)[-1][:1].lower() + (ref or "").rsplit(".", 1)[-1][1:]
    if "omitzero" in flags:
        extra["omitzero"] = True
    f = _field(name, num, typ, ref, repeated, pointer, "omitempty" in flags, **extra)
    for mk in markers:
        if mk == "nullable":
            continue
        k, v = mk.split("=", 1)
        if k == "ps":
            f["patchStrategy"] = v
        elif k == "pk":
            f["patchMergeKey"] = v
        elif k == "lt":
            f["listType"] = v
        elif k == "lk":
            f["listMapKeys"] = v.split(",")
        else:
            raise ValueError(f"unknown marker {mk!r}")
    return f


def _special_defs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, spec in SPECIAL_DEFS.items():
        fields = []
        for fname, num, typ in spec["fields"]:
            if typ in SCALARS.values():
                fields.append(_field(fname, num, typ, omitempty=False))
            else:
                fields.append(_field(fname, num, "message", typ))
        out[name] = {"description": spec["description"], "gvk": [], "fields": fields}
    return out


def _client_class(defname: str) -> Any:
    """The kubernetes Python client's model class for a definition (it carries upstream's doc text)."""
    try:
        from kubernetes.client import models
    except ImportError:
        return None
    parts = defname.split(".")
    kind, ver = parts[-1], parts[-2]
    cver = ver[:1].upper() + ver[1:]
    cands = [cver + kind]
    if defname.startswith("io.k8s.api."):
        grp = parts[3]
        cands.insert(0, grp[:1].upper() + grp[1:] + cver + kind)
    for c in cands:
        cls = getattr(models, c, None)
        if cls is not None:
            return cls
    return None


def _describe(defs: dict[str, dict[str, Any]]) -> None:
    for name, d in defs.items():
        cls = _client_class(name)
        if cls is None:
            continue
        doc = (cls.__doc__ or "").split("Attributes:", 1)[0].strip()
        if doc and not d["description"]:
            d["description"] = doc
        by_json = {v: k for k, v in getattr(cls, "attribute_map", {}).items()}
        model_fields = getattr(cls, "model_fields", {})
        for f in d["fields"]:
            py = by_json.get(f["name"])
            if py and py in model_fields and model_fields[py].description:
                f["description"] = model_fields[py].description


def generate(src: Path) -> dict[str, Any]:
    defs = _special_defs()
    for p in sorted(src.glob("*.facts")):
        defs.update(parse_facts(p.read_text()))
    _describe(defs)
    missing = sorted({f.get("ref") or f.get("mapValue") for d in defs.values() for f in d["fields"]}
                     - set(defs) - set(SCALARS.values()) - {None})
    if missing:
        raise SystemExit(f"unresolved references: {missing}")
    return {"definitions": dict(sorted(defs.items()))}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    out = Path(argv[2]) if len(argv) > 2 else Path(__file__).resolve().parents[1] / "src/kubegate/schema/definitions.json"
    data = generate(Path(argv[1]))
    out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(data['definitions'])} definitions to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
