"""Generate src/kubegate/schema/definitions.json.gz from a kubectl binary and the Python client.

Usage: .venv/bin/python tools/gen_schema.py [--kubectl PATH] [--facts DIR] [--out FILE]

Sources, all upstream's own artefacts:
- the gzipped `generated.proto` FileDescriptorProtos kubectl registers (tools/proto_descriptors.py):
  protobuf field numbers, wire types, repeated/map, message references;
- kubectl's Go type metadata (tools/go_types.py): each struct's fields in declaration order, their
  struct tags (JSON name, omitempty, patchStrategy, patchMergeKey) and Go types (pointer-ness and
  the type names Go's JSON decoder prints in errors);
- the installed `kubernetes` Python client's models: descriptions for `kubectl explain`.
listType/listMapKeys markers are doc comments, absent from all three: they are carried over from
the previous output and from `*.facts` transcriptions (--facts) where those exist. The facts also
cross-check numbers and JSON names, and contribute `omitzero`, which appeared in upstream after the
kubectl release that is read here.
"""
from __future__ import annotations

import argparse
import gzip
import re
import sys
from collections import deque
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from go_types import GoField, GoStruct, GoType, read_structs  # noqa: E402
from proto_descriptors import ProtoField, ProtoMessage, read_messages  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KUBECTL = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.33")
DEFAULT_FACTS = Path("/tmp/k8s-src")
DEFAULT_OUT = ROOT / "src/kubegate/schema/definitions.json.gz"

META_PKG = "k8s.io/apimachinery/pkg/apis/meta/v1"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"

# API package -> (group, version) and the kinds served from it; each kind's List is added when it exists.
API_GROUPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "k8s.io/api/core/v1": ("", "v1", (
        "Namespace", "ConfigMap", "Secret", "ServiceAccount", "Pod", "Binding", "Node", "Event", "LimitRange",
        "ResourceQuota", "PersistentVolumeClaim", "PersistentVolume", "Service", "Endpoints", "PodTemplate",
        "ReplicationController", "ComponentStatus")),
    "k8s.io/api/apps/v1": ("apps", "v1", ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet",
                                          "ControllerRevision")),
    "k8s.io/api/autoscaling/v1": ("autoscaling", "v1", ("Scale",)),
    "k8s.io/api/policy/v1": ("policy", "v1", ("Eviction",)),
    "k8s.io/api/batch/v1": ("batch", "v1", ("Job", "CronJob")),
    "k8s.io/api/rbac/v1": ("rbac.authorization.k8s.io", "v1", ("Role", "ClusterRole", "RoleBinding",
                                                                "ClusterRoleBinding")),
    "k8s.io/api/certificates/v1": ("certificates.k8s.io", "v1", ("CertificateSigningRequest",)),
    "k8s.io/api/networking/v1": ("networking.k8s.io", "v1", ("NetworkPolicy",)),
    "k8s.io/api/coordination/v1": ("coordination.k8s.io", "v1", ("Lease",)),
    "k8s.io/api/events/v1": ("events.k8s.io", "v1", ("Event",)),
    "k8s.io/api/storage/v1": ("storage.k8s.io", "v1", ("StorageClass",)),
    "k8s.io/api/authentication/v1": ("authentication.k8s.io", "v1", ("TokenRequest", "TokenReview",
                                                                      "SelfSubjectReview")),
    "k8s.io/api/authorization/v1": ("authorization.k8s.io", "v1", (
        "SubjectAccessReview", "SelfSubjectAccessReview", "LocalSubjectAccessReview", "SelfSubjectRulesReview")),
    "k8s.io/api/authorization/v1beta1": ("authorization.k8s.io", "v1beta1", ("SubjectAccessReview",)),
    "k8s.io/api/admissionregistration/v1": ("admissionregistration.k8s.io", "v1", (
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding")),
}
# metav1.AddToGroupVersion registers these in every served group version.
META_PER_GV = ("WatchEvent", "ListOptions", "GetOptions", "DeleteOptions", "CreateOptions", "UpdateOptions",
               "PatchOptions")
# Unversioned discovery and status kinds: "v1" in the legacy group and in meta.k8s.io.
META_UNVERSIONED = ("Status", "APIVersions", "APIGroupList", "APIGroup", "APIResourceList")
META_K8S_IO = ("Table", "PartialObjectMetadata", "PartialObjectMetadataList")

# Types whose JSON form is not their Go struct: defined by their proto message alone.
SPECIAL = {
    f"{META}.Time": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  "
                    "Wrappers are provided for many of the factory methods that the time package offers.",
    f"{META}.MicroTime": "MicroTime is version of Time with microsecond level precision.",
    f"{META}.Duration": "Duration is a wrapper around time.Duration which supports correct marshaling to YAML "
                        "and JSON. In particular, it marshals into strings, which can be used as map keys in json.",
    f"{META}.FieldsV1": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": (
        "Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling "
        "in JSON and YAML, in addition to String() and AsInt64() accessors."),
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": (
        "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and "
        "unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON "
        "field that can accept a name or number."),
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "RawExtension is used to hold extensions in external versions.",
    "io.k8s.apimachinery.pkg.runtime.Unknown": "Unknown allows api objects with unknown types to be passed-through.",
    "io.k8s.apimachinery.pkg.runtime.TypeMeta": "TypeMeta is shared by all top level objects.",
}
_GO_SCALARS = {"string": "string", "int32": "int32", "int64": "int64", "int": "int64", "bool": "bool",
               "float64": "double", "uint32": "int64", "uint64": "int64"}
_TAG = re.compile(r'(\w+):"([^"]*)"')


def defname_for_pkg(pkg_path: str, name: str) -> str:
    """Go package path + type name -> OpenAPI definition name (io.k8s.api.core.v1.Pod)."""
    return pkg_path.replace("/", ".").replace("k8s.io.", "io.k8s.", 1) + "." + name


def defname_for_proto(full: str) -> str:
    return full.replace("k8s.io.", "io.k8s.", 1)


def parse_tag(tag: str) -> dict[str, str]:
    return dict(_TAG.findall(tag))


class Builder:
    def __init__(self, structs: dict[tuple[str, str], GoStruct], messages: dict[str, ProtoMessage]) -> None:
        self.structs = {defname_for_pkg(p, n): s for (p, n), s in structs.items()}
        self.messages = {defname_for_proto(n): m for n, m in messages.items() if not m.map_entry}
        self.entries = {n: m for n, m in messages.items() if m.map_entry}
        self.warnings: list[str] = []
        # Named slice types that travel as a message of `items` (metav1.Verbs, ExtraValue): JSON is the bare list.
        self.list_wrappers: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.structs or name in self.messages

    # -------------------------------------------------------------------------------------- definitions

    def build(self, name: str) -> dict[str, Any]:
        st = self.structs.get(name)
        if name in SPECIAL or st is None:
            # Special types, and field-less structs (metav1.Patch) the type scan cannot see.
            return {"description": SPECIAL.get(name, ""), "gvk": [],
                    "fields": [self._proto_only(f) for f in self.messages[name].fields]}
        msg = self.messages.get(name)
        by_num = {f.number: f for f in msg.fields} if msg else {}
        fields: list[dict[str, Any]] = []
        for gf in st.fields:
            f = self._field(name, gf, by_num)
            if f is not None:
                fields.append(f)
        if msg:
            missing = set(by_num) - {f["number"] for f in fields}
            if missing:
                self.warnings.append(f"{name}: proto fields {sorted(missing)} have no Go struct field")
        return {"description": "", "gvk": [], "fields": fields}

    def _proto_only(self, pf: ProtoField) -> dict[str, Any]:
        ref = defname_for_proto(pf.type_name) if pf.type == "message" else None
        return _new_field(pf.name, pf.number, pf.type, ref, pf.repeated, False, False, pf.type, "")

    def _field(self, owner: str, gf: GoField, by_num: dict[int, ProtoField]) -> dict[str, Any] | None:
        tag = parse_tag(gf.tag)
        jname, *opts = tag.get("json", gf.name).split(",")
        if jname == "-":
            return None
        pb = tag.get("protobuf", "")
        number = int(pb.split(",")[1]) if pb else 0
        inline = "inline" in opts
        if inline and not number:
            if gf.type.string == "v1.TypeMeta":
                return None  # apiVersion/kind travel in the protobuf envelope, not as a field
            raise SystemExit(f"{owner}.{gf.name}: inline struct without a protobuf number")
        gt = gf.type
        pointer = gt.kind == "ptr"
        base = gt.elem if pointer and gt.elem else gt
        pf = by_num.get(number) if number else None
        if number and pf is None:
            raise SystemExit(f"{owner}.{jname}: protobuf number {number} is not in the descriptor")
        typ, ref, repeated, extra = self._types(owner, jname, base, pf)
        # gogoproto.nullable and the Go type must agree on pointer-ness (slices and maps are never pointers)
        plain = pf is not None and not pf.repeated and typ not in ("map", "bytes") and ref not in self.list_wrappers
        if plain and pf is not None and pf.nullable != pointer:
            self.warnings.append(f"{owner}.{jname}: gogoproto nullable={pf.nullable} but Go type {gt.string}")
        name = jname
        if inline:
            name = pf.name if pf else jname
        elem = base.elem if base.kind in ("slice", "map") and base.elem else None
        if elem is not None and elem.kind == "ptr" and elem.elem is not None:
            elem = elem.elem
        f = _new_field(name, number, typ, ref, repeated, pointer, "omitempty" in opts, base.string,
                       elem.string if elem and base.string != "[]uint8" else "")
        f.update(extra)
        if inline:
            f["inline"] = True
        if "omitzero" in opts:
            f["omitzero"] = True
        f["patchStrategy"] = tag.get("patchStrategy")
        f["patchMergeKey"] = tag.get("patchMergeKey")
        return f

    def _types(self, owner: str, jname: str, base: GoType,
               pf: ProtoField | None) -> tuple[str, str | None, bool, dict[str, Any]]:
        """(type, ref, repeated, extra) from the descriptor where there is one, else from the Go type."""
        if pf is not None:
            if pf.type == "message" and pf.type_name in self.entries:
                entry = self.entries[pf.type_name]
                k, v = sorted(entry.fields, key=lambda x: x.number)
                val = defname_for_proto(v.type_name) if v.type == "message" else v.type
                if v.type == "message" and base.elem and base.elem.kind == "slice":
                    self.list_wrappers.add(val)
                return "map", None, False, {"mapKey": k.type, "mapValue": val}
            ref = defname_for_proto(pf.type_name) if pf.type == "message" else None
            if ref and base.kind == "slice" and not pf.repeated:
                self.list_wrappers.add(ref)
                return pf.type, ref, False, {}
            self._check(owner, jname, base, pf)
            return pf.type, ref, pf.repeated, {}
        return self._go_types(owner, jname, base)

    def _go_types(self, owner: str, jname: str, base: GoType) -> tuple[str, str | None, bool, dict[str, Any]]:
        if base.kind == "map" and base.key and base.elem:
            vt, vref, _, _ = self._go_types(owner, jname, base.elem)
            return "map", None, False, {"mapKey": _GO_SCALARS[base.key.kind], "mapValue": vref or vt}
        if base.kind == "slice" and base.elem and base.string != "[]uint8" and base.elem.kind != "uint8":
            t, ref, _, extra = self._go_types(owner, jname, base.elem)
            return t, ref, True, extra
        if base.kind == "slice":
            return "bytes", None, False, {}
        if base.kind == "ptr" and base.elem:
            return self._go_types(owner, jname, base.elem)
        if base.kind == "struct":
            return "message", defname_for_pkg(base.pkg_path, base.name), False, {}
        if base.kind == "interface":
            return "object", None, False, {}
        if base.kind in _GO_SCALARS:
            return _GO_SCALARS[base.kind], None, False, {}
        raise SystemExit(f"{owner}.{jname}: cannot map Go type {base.string}")

    def _check(self, owner: str, jname: str, base: GoType, pf: ProtoField) -> None:
        gt, gref, grep, _ = self._go_types(owner, jname, base)
        want_ref = defname_for_proto(pf.type_name) if pf.type == "message" else None
        same_type = gt == pf.type or {gt, pf.type} <= {"int64", "int32"} and base.kind in ("int", "uint32")
        if not same_type or grep != pf.repeated or (want_ref and gref != want_ref):
            self.warnings.append(f"{owner}.{jname}: Go {base.string} vs proto {pf.type} {pf.type_name}")


def _new_field(name: str, number: int, typ: str, ref: str | None, repeated: bool, pointer: bool,
               omitempty: bool, go_type: str, go_elem: str) -> dict[str, Any]:
    return {"name": name, "number": number, "type": typ, "ref": ref, "repeated": repeated, "pointer": pointer,
            "omitempty": omitempty, "description": "", "patchStrategy": None, "patchMergeKey": None,
            "listType": None, "listMapKeys": None, "goType": go_type, "goElem": go_elem}


def _refs(d: dict[str, Any]) -> list[str]:
    out = []
    for f in d["fields"]:
        if f.get("ref"):
            out.append(f["ref"])
        mv = f.get("mapValue")
        if mv and "." in mv:
            out.append(mv)
    return out


def roots(b: Builder) -> dict[str, list[dict[str, str]]]:
    """Definition name -> its gvks, for every top-level kind; meta/v1 types are all roots."""
    gvks: dict[str, list[dict[str, str]]] = {}

    def add(defn: str, group: str, version: str, kind: str) -> None:
        if not b.has(defn):
            raise SystemExit(f"kind {kind} ({defn}) is not in the binary")
        gvks.setdefault(defn, []).append({"group": group, "version": version, "kind": kind})

    all_gvs: list[tuple[str, str]] = [("meta.k8s.io", "v1")]
    for pkg, (group, version, kinds) in API_GROUPS.items():
        all_gvs.append((group, version))
        for kind in kinds:
            add(defname_for_pkg(pkg, kind), group, version, kind)
            if b.has(defname_for_pkg(pkg, kind + "List")):
                add(defname_for_pkg(pkg, kind + "List"), group, version, kind + "List")
    for kind in META_PER_GV:
        for group, version in dict.fromkeys(all_gvs):
            add(f"{META}.{kind}", group, version, kind)
    for kind in META_UNVERSIONED:
        for group in ("", "meta.k8s.io"):
            add(f"{META}.{kind}", group, "v1", kind)
    for kind in META_K8S_IO:
        add(f"{META}.{kind}", "meta.k8s.io", "v1", kind)
        v1beta1 = f"io.k8s.apimachinery.pkg.apis.meta.v1beta1.{kind}"
        add(v1beta1 if b.has(v1beta1) else f"{META}.{kind}", "meta.k8s.io", "v1beta1", kind)
    for name in sorted(set(b.messages) | set(b.structs)):
        if name.startswith(META + ".") and name.count(".") == META.count(".") + 1:
            st = b.structs.get(name)
            if name in b.messages or (st and any("json:" in f.tag for f in st.fields)):
                gvks.setdefault(name, [])
    for name in SPECIAL:
        gvks.setdefault(name, [])
    return gvks


def collect(b: Builder) -> dict[str, dict[str, Any]]:
    root = roots(b)
    defs: dict[str, dict[str, Any]] = {}
    todo = deque(root)
    while todo:
        name = todo.popleft()
        if name in defs:
            continue
        if not b.has(name) and name not in SPECIAL:
            raise SystemExit(f"unresolved reference {name}")
        d = b.build(name)
        d["gvk"] = root.get(name, [])
        defs[name] = d
        todo.extend(r for r in _refs(d) if r not in defs)
    for name in b.list_wrappers:
        defs[name]["listWrapper"] = True
    return defs


# ------------------------------------------------------------------------------------------ descriptions

def _client_class(defname: str, json_names: set[str]) -> Any:
    """The Python client's model for a definition, if its JSON attributes agree with ours."""
    from kubernetes.client import models
    parts = defname.split(".")
    kind, ver = parts[-1], parts[-2]
    cver = ver[:1].upper() + ver[1:]
    cands = [cver + kind]
    if defname.startswith("io.k8s.api."):
        grp = parts[3]
        cands.insert(0, grp[:1].upper() + grp[1:] + cver + kind)
    for c in cands:
        cls = getattr(models, c, None)
        if cls is not None and set(getattr(cls, "attribute_map", {}).values()) >= json_names - {"apiVersion",
                                                                                                  "kind"}:
            return cls
    return None


def describe(defs: dict[str, dict[str, Any]]) -> None:
    """Fill descriptions from the client models; the client omits them on fields that reference a type."""
    for name, d in defs.items():
        cls = _client_class(name, {f["name"] for f in d["fields"] if not f.get("inline")})
        if cls is None:
            continue
        doc = (cls.__doc__ or "").split("Attributes:", 1)[0].strip()
        if doc and not d["description"]:
            d["description"] = " ".join(line.strip() for line in doc.splitlines()) if "\n" in doc else doc
        _describe_fields(d, cls)
        # Inline structs (VolumeSource, ProbeHandler) have no model of their own: the embedding one has them.
        for f in d["fields"]:
            if f.get("inline") and f["ref"] in defs:
                _describe_fields(defs[f["ref"]], cls)


def _describe_fields(d: dict[str, Any], cls: Any) -> None:
    by_json = {v: k for k, v in getattr(cls, "attribute_map", {}).items()}
    model_fields = getattr(cls, "model_fields", {})
    for f in d["fields"]:
        py = by_json.get(f["name"])
        if py and py in model_fields and model_fields[py].description and not f["description"]:
            f["description"] = model_fields[py].description


# ------------------------------------------------------------------------------------------ markers

_FACT_LINE = re.compile(r"^(\S*)\s+(\S+)\s+(\d+)((?:\s+\S+)*)$")


def read_facts(src: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(definition, JSON name) -> {number, omitzero, listType, listMapKeys} from `*.facts` files."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for p in sorted(src.glob("*.facts")):
        pkg = cur = ""
        for raw in p.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith(("gv ", "import ")):
                continue
            if line.startswith("package "):
                pkg = line.split()[1]
            elif line.startswith("@"):
                cur = f"{pkg}.{line[1:].split()[0]}"
            elif m := _FACT_LINE.match(line):
                tag, flags = m.group(1).split(",")[0], m.group(1).split(",")[1:]
                info: dict[str, Any] = {"number": int(m.group(3)), "omitzero": "omitzero" in flags}
                for mk in m.group(4).split():
                    k, _, v = mk.partition("=")
                    if k == "lt":
                        info["listType"] = v
                    elif k == "lk":
                        info["listMapKeys"] = v.split(",")
                out[(cur, tag)] = info
    return out


def previous_markers(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Markers of an earlier output, so regenerating without the facts does not lose them."""
    if not path.exists():
        return {}
    raw = path.read_bytes()
    data = orjson.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)["definitions"]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for name, d in data.items():
        for f in d["fields"]:
            info = {k: f[k] for k in ("listType", "listMapKeys", "omitzero") if f.get(k)}
            if info:
                out[(name, f["name"])] = info
    return out


def apply_markers(defs: dict[str, dict[str, Any]], markers: dict[tuple[str, str], dict[str, Any]],
                  warnings: list[str]) -> None:
    for (dname, fname), info in markers.items():
        d = defs.get(dname)
        f = next((x for x in d["fields"] if x["name"] == fname), None) if d else None
        if f is None:
            if d is not None and "number" in info:
                warnings.append(f"facts name {dname}.{fname}, which kubectl's types do not have")
            continue
        if info.get("number") not in (None, 0, f["number"]):
            warnings.append(f"facts disagree on {dname}.{fname}: number {info['number']} vs {f['number']}")
        for k in ("listType", "listMapKeys"):
            if info.get(k):
                f[k] = info[k]
        if info.get("omitzero"):
            f["omitzero"] = True


# ------------------------------------------------------------------------------------------ tag collisions

def tag_collisions(b: Builder, names: list[str]) -> dict[tuple[str, int], set[tuple[str, str, str]]]:
    """Struct tags that a flat scan of the binary's strings could not attribute to one message.

    Key: (protobuf name, number); value: the distinct (json, patchStrategy, patchMergeKey) seen across
    the generated definitions. Reading tags per Go struct resolves every one of them; the report shows
    what a string scan would have had to guess.
    """
    seen: dict[tuple[str, int], set[tuple[str, str, str]]] = {}
    for name in names:
        st = b.structs.get(name)
        for gf in st.fields if st else ():
            tag = parse_tag(gf.tag)
            pb = tag.get("protobuf", "").split(",")
            pname = next((p[5:] for p in pb if p.startswith("name=")), "")
            if len(pb) > 1:
                seen.setdefault((pname, int(pb[1])), set()).add(
                    (tag.get("json", ""), tag.get("patchStrategy", ""), tag.get("patchMergeKey", "")))
    return {k: v for k, v in seen.items() if len(v) > 1}


# ------------------------------------------------------------------------------------------ main

def generate(kubectl: Path, facts: Path | None, previous: Path | None) -> tuple[dict[str, Any], list[str]]:
    binary = kubectl.read_bytes()
    b = Builder(read_structs(binary, ("k8s.io/api/", "k8s.io/apimachinery/")), read_messages(binary))
    defs = collect(b)
    describe(defs)
    markers = previous_markers(previous) if previous else {}
    if facts and facts.is_dir():
        markers.update(read_facts(facts))
    apply_markers(defs, markers, b.warnings)
    for (pname, num), variants in sorted(tag_collisions(b, list(defs)).items()):
        if len({v[1:] for v in variants}) > 1:
            b.warnings.append(f"tag collision {pname}={num} resolved per struct: {sorted(variants)}")
    return {"definitions": dict(sorted(defs.items()))}, b.warnings


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--kubectl", type=Path, default=DEFAULT_KUBECTL)
    ap.add_argument("--facts", type=Path, default=DEFAULT_FACTS)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    data, warnings = generate(args.kubectl, args.facts, args.out)
    for w in warnings:
        print("warning:", w, file=sys.stderr)
    body = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    args.out.write_bytes(gzip.compress(body, 9, mtime=0) if args.out.suffix == ".gz" else body)
    print(f"wrote {len(data['definitions'])} definitions ({len(body)} bytes of JSON) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
