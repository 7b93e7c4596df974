"""Label and field selectors, parsed, printed and matched as upstream does.

Label selectors follow k8s.io/apimachinery/pkg/labels (the `labelSelector` query parameter) and
metav1.LabelSelector objects ({matchLabels, matchExpressions}); field selectors follow
k8s.io/apimachinery/pkg/fields plus each kind's field label conversion and selectable fields
(pkg/apis/*/v1/conversion.go, pkg/registry/*/strategy.go). Everything here is pure.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubegate.api.errors import Cause, bad_request, field_forbidden, field_invalid, field_required
from kubegate.api.resources import Resource
from kubegate.api.validation import names

# ---------------------------------------------------------------------------------------------
# Name and value validation (k8s.io/apimachinery/pkg/util/validation), as label keys need it.

def qualified_name_errors(value: str) -> list[str]:
    """validation.IsQualifiedName: `[prefix/]name`, the shape of every label key."""
    return names.is_qualified_name(value, noun="a qualified name", bytes_message=False)


def label_value_errors(value: str) -> list[str]:
    """validation.IsValidLabelValue."""
    return names.is_label_value(value, bytes_message=False)


# ---------------------------------------------------------------------------------------------
# Label selectors

class SelectorError(ValueError):
    """A selector that does not parse or convert; str() is upstream's error text."""


def _go_value(v: Any) -> str:
    """How field.Invalid renders a bad value: %q for strings, %#v for string slices."""
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if v is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_value(x) for x in v) + "}"


def _invalid(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {_go_value(value)}: {detail}"


def _aggregate(msgs: list[str]) -> str:
    """errors.NewAggregate(...).Error(): one message bare, several in brackets, duplicates dropped."""
    uniq = list(dict.fromkeys(msgs))
    return uniq[0] if len(uniq) == 1 else "[" + ", ".join(uniq) + "]"


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector. `op` is upstream's selection.Operator string."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.op in ("in", "=", "=="):
            return has and labels[self.key] in self.values
        if self.op in ("notin", "!="):
            return not has or labels[self.key] not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("gt", "lt"):
            if not has or len(self.values) != 1:
                return False
            try:
                have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            except ValueError:
                return False
            return have > want if self.op == "gt" else have < want
        return False

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return "!" + self.key
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({vals})"
        sym = {"gt": ">", "lt": "<"}.get(self.op, self.op)
        return f"{self.key}{sym}{vals}"


def _parse_int64(s: str) -> int:
    """strconv.ParseInt(s, 10, 64): optional sign and decimal digits only."""
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        raise ValueError(s)
    n = int(s)
    if not -(1 << 63) <= n < (1 << 63):
        raise ValueError(s)
    return n


def _new_requirement(key: str, op: str, values: list[str] | None) -> Requirement:
    """labels.NewRequirement with its aggregated field errors (path rooted at nil)."""
    vals = values or []
    errs: list[str] = []
    key_errs = qualified_name_errors(key)
    if key_errs:
        errs.append(_invalid("key", key, "; ".join(key_errs)))
    if op in ("in", "notin"):
        if not vals:
            errs.append(_invalid("values", values, "for 'in', 'notin' operators, values set can't be empty"))
    elif op in ("=", "==", "!="):
        if len(vals) != 1:
            errs.append(_invalid("values", values, "exact-match compatibility requires one single value"))
    elif op in ("exists", "!"):
        if vals:
            errs.append(_invalid("values", values, "values set must be empty for exists and does not exist"))
    else:  # gt, lt
        if len(vals) != 1:
            errs.append(_invalid("values", values, "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            try:
                _parse_int64(v)
            except ValueError:
                errs.append(_invalid(f"values[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer"))
    for i, v in enumerate(vals):
        v_errs = label_value_errors(v)
        if v_errs:
            errs.append(_invalid(f"values[{i}][{key}]", v, "; ".join(v_errs)))
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, op, tuple(vals))


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: the AND of its requirements, kept sorted by key as upstream does.

    `nothing` is labels.Nothing() (a nil metav1.LabelSelector): it matches no object.
    """

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        ls = labels or {}
        return all(r.matches(ls) for r in self.requirements)

    def empty(self) -> bool:
        """True when the selector does not restrict anything (labels.Selector.Empty)."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        for r in self.requirements:
            if r.key == key:
                if r.op in ("=", "==", "in") and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _selector(reqs: list[Requirement]) -> LabelSelector:
    # sort.Sort(ByKey) in upstream; a stable sort keeps duplicate keys in input order
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


# Lexer tokens (labels/selector.go)
_T_ERROR, _T_EOS, _T_CLOSE, _T_COMMA, _T_NOT, _T_DEQ, _T_EQ, _T_GT, _T_ID, _T_IN, _T_LT, _T_NEQ, _T_NOTIN, _T_OPEN = \
    range(14)
_STRING2TOKEN = {")": _T_CLOSE, ",": _T_COMMA, "!": _T_NOT, "==": _T_DEQ, "=": _T_EQ, ">": _T_GT, "in": _T_IN,
                 "<": _T_LT, "!=": _T_NEQ, "notin": _T_NOTIN, "(": _T_OPEN}
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")
_BINARY_OPS = "in, notin, =, ==, !=, gt, lt"


def _lex(s: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    pos, n = 0, len(s)
    while True:
        while pos < n and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            items.append((_T_EOS, ""))
            return items
        if s[pos] in _SPECIAL:
            buf, last = "", (0, "")
            while pos < n and s[pos] in _SPECIAL:
                buf += s[pos]
                if buf in _STRING2TOKEN:
                    last = (_STRING2TOKEN[buf], buf)
                    pos += 1
                elif last[0]:
                    break
                else:
                    pos += 1
            items.append(last if last[0] else (_T_ERROR, f"error expected: keyword found '{buf}'"))
        else:
            start = pos
            while pos < n and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE:
                pos += 1
            word = s[start:pos]
            items.append((_STRING2TOKEN.get(word, _T_ID), word))


class _Parser:
    """labels.Parser: a recursive-descent parser over the lexed tokens."""

    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def _tok(self, i: int, values: bool) -> tuple[int, str]:
        tok, lit = self.items[i]
        if values and tok in (_T_IN, _T_NOTIN):
            tok = _T_ID  # 'in'/'notin' are plain identifiers where values are expected
        return tok, lit

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        return self._tok(self.pos, values)

    def consume(self, values: bool = True) -> tuple[int, str]:
        self.pos += 1
        return self._tok(self.pos - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_T_ID, _T_NOT):
                try:
                    reqs.append(self.requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e}") from None
                t, l = self.consume()
                if t == _T_EOS:
                    return reqs
                if t == _T_COMMA:
                    t2, l2 = self.lookahead()
                    if t2 not in (_T_ID, _T_NOT):
                        raise SelectorError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{l}', expected: ',' or 'end of string'")
            elif tok == _T_EOS:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        tok, lit = self.consume()
        if tok == _T_NOT:
            op = "!"
            tok, lit = self.consume()
        if tok != _T_ID:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key_errs = qualified_name_errors(lit)
        if key_errs:
            raise SelectorError(_invalid("<nil>", lit, "; ".join(key_errs)))
        key = lit
        if op == "!" or self.lookahead()[0] in (_T_EOS, _T_COMMA):
            # "!key" is complete by itself; whatever follows is then reported by parse()
            return _new_requirement(key, op or "exists", [])
        tok, lit = self.consume(values=False)
        op = {_T_IN: "in", _T_EQ: "=", _T_DEQ: "==", _T_GT: "gt", _T_LT: "lt", _T_NOTIN: "notin",
              _T_NEQ: "!="}.get(tok, "")
        if not op:
            raise SelectorError(f"found '{lit}', expected: {_BINARY_OPS}")
        values = self.set_values() if op in ("in", "notin") else self.exact_value()
        return _new_requirement(key, op, sorted(values))

    def set_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _T_OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_T_ID, _T_COMMA):
            s = self.identifiers()
            if self.consume()[0] != _T_CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return s
        if tok == _T_CLOSE:
            self.consume()
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _T_ID:
                s.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == _T_COMMA:
                    continue
                if tok2 == _T_CLOSE:
                    return s
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _T_COMMA:
                if not s:
                    s.add("")  # "(,"
                tok2 = self.lookahead()[0]
                if tok2 == _T_CLOSE:
                    s.add("")  # ",)"
                    return s
                if tok2 == _T_COMMA:
                    self.consume()
                    s.add("")  # ",,"
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_T_EOS, _T_COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _T_ID:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector_or_error(s: str) -> LabelSelector:
    """labels.Parse; raises SelectorError with upstream's text."""
    return _selector(_Parser(s).parse())


def parse_label_selector(s: str) -> LabelSelector:
    """The `labelSelector` query parameter; a bad one is upstream's 400 BadRequest."""
    try:
        return parse_label_selector_or_error(s)
    except SelectorError as e:
        raise bad_request(str(e)) from None


_EXPR_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_from_object(sel: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, {} selects everything.

    Raises SelectorError (upstream's text) for an unknown operator or an invalid requirement.
    """
    if sel is None:
        return LabelSelector(nothing=True)
    match_labels: Mapping[str, str] = sel.get("matchLabels") or {}
    exprs: list[Mapping[str, Any]] = sel.get("matchExpressions") or []
    reqs = [_new_requirement(k, "=", [v]) for k, v in match_labels.items()]
    for e in exprs:
        op = _EXPR_OPS.get(e.get("operator", ""))
        if op is None:
            raise SelectorError(f'"{e.get("operator", "")}" is not a valid label selector operator')
        values = e.get("values")
        reqs.append(_new_requirement(e.get("key", ""), op, list(values) if values else None))
    return _selector(reqs)


def format_label_selector(sel: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector, as printers show selectors: `<error>`, `<none>` or the string."""
    try:
        s = str(label_selector_from_object(sel))
    except SelectorError:
        return "<error>"
    return s or "<none>"


def validate_label_selector(sel: Mapping[str, Any] | None, path: str,
                            allow_invalid_label_value: bool = False) -> list[Cause]:
    """metav1validation.ValidateLabelSelector: field errors for a selector inside an object."""
    causes: list[Cause] = []
    if sel is None:
        return causes
    labels_path = f"{path}.matchLabels"
    for k in sorted(sel.get("matchLabels") or {}):
        v = sel["matchLabels"][k]
        causes.extend(field_invalid(labels_path, k, m) for m in qualified_name_errors(k))
        causes.extend(field_invalid(labels_path, v, m) for m in label_value_errors(v))
    for i, e in enumerate(sel.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        op = e.get("operator", "")
        values = e.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                causes.append(field_required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(field_forbidden(f"{p}.values",
                                              "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(field_invalid(f"{p}.operator", op, "not a valid selector operator"))
        key = e.get("key", "")
        causes.extend(field_invalid(f"{p}.key", key, m) for m in qualified_name_errors(key))
        if not allow_invalid_label_value:
            for j, v in enumerate(values):
                causes.extend(field_invalid(f"{p}.values[{j}]", v, m) for m in label_value_errors(v))
    return causes


# ---------------------------------------------------------------------------------------------
# Field selectors

@dataclass(frozen=True)
class FieldTerm:
    field: str
    op: str  # "=" (also for "==") or "!="
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.op}{escape_field_value(self.value)}"


def escape_field_value(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(s: str) -> str:
    if not any(c in s for c in "\\,="):
        return s
    out: list[str] = []
    in_slash = False
    for c in s:
        if in_slash:
            if c not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            # Go prints the rune with %v, i.e. as its code point
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    """Split on commas that are not backslash-escaped."""
    terms, start, escaped = [], 0, False
    for i, c in enumerate(s):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


@dataclass(frozen=True)
class FieldSelector:
    """The AND of field terms; matched against a kind's selectable field set."""

    terms: tuple[FieldTerm, ...] = ()
    field_set: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if not self.terms:
            return True
        fs = (self.field_set or _meta_fields)(obj)
        for t in self.terms:
            have = fs.get(t.field, "")
            if (have == t.value) != (t.op == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.terms

    def requires_exact_match(self, field: str) -> str | None:
        for t in self.terms:
            if t.field == field and t.op == "=":
                return t.value
        return None

    def exact_name(self) -> str | None:
        """The name a `metadata.name=<n>` term pins, if it is a valid path segment.

        This is what request info uses as the authorization name of a list/watch.
        """
        name = self.requires_exact_match("metadata.name")
        if name is None or name in (".", "..") or "/" in name or "%" in name:
            return None
        return name

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


def parse_raw_field_selector(s: str) -> FieldSelector:
    """fields.ParseSelector without kind conversion (what request info does); SelectorError on bad syntax."""
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(s)):
        if part == "":
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        lhs, op, rhs = split
        terms.append(FieldTerm(lhs, "!=" if op == "!=" else "=", _unescape_field_value(rhs)))
    return FieldSelector(tuple(terms))


# Field label conversions: label -> internal label for kinds that register one; others get upstream's
# default (metadata.name / metadata.namespace only) with its different error text.
_POD_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
               "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
               "status.nominatedNodeName")
_CORE_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                      "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                      "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
                      "metadata.namespace", "metadata.name")
_CONVERSIONS: dict[tuple[str, str], dict[str, str]] = {
    ("", "Pod"): {**{f: f for f in _POD_FIELDS}, "spec.host": "spec.nodeName"},
    ("", "Node"): {"metadata.name": "metadata.name", "spec.unschedulable": "spec.unschedulable"},
    ("", "Event"): {f: f for f in _CORE_EVENT_FIELDS},
    ("", "Namespace"): {"status.phase": "status.phase", "metadata.name": "metadata.name"},
    ("", "Secret"): {f: f for f in ("type", "metadata.namespace", "metadata.name")},
    ("certificates.k8s.io", "CertificateSigningRequest"): {"metadata.name": "metadata.name",
                                                           "spec.signerName": "spec.signerName"},
    ("events.k8s.io", "Event"): {
        "reason": "reason", "regarding.kind": "involvedObject.kind",
        "regarding.namespace": "involvedObject.namespace", "regarding.name": "involvedObject.name",
        "regarding.uid": "involvedObject.uid", "regarding.apiVersion": "involvedObject.apiVersion",
        "regarding.resourceVersion": "involvedObject.resourceVersion",
        "regarding.fieldPath": "involvedObject.fieldPath", "reportingController": "reportingComponent",
        "type": "type", "metadata.namespace": "metadata.namespace", "metadata.name": "metadata.name"},
}
# Kinds without a registered conversion accept the metadata fields, plus what their strategy selects on
# (apps/v1 ReplicaSet: status.replicas), and reject anything else with the default conversion's text.
_DEFAULT_EXTRA: dict[tuple[str, str], tuple[str, ...]] = {("apps", "ReplicaSet"): ("status.replicas",)}


def _convert_label(resource: Resource, label: str) -> str:
    kind = (resource.group, resource.kind)
    table = _CONVERSIONS.get(kind)
    if table is not None:
        if label in table:
            return table[label]
        raise SelectorError(f"field label not supported: {label}")
    if label in ("metadata.name", "metadata.namespace") or label in _DEFAULT_EXTRA.get(kind, ()):
        return label
    raise SelectorError(f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"')


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _bool(v: Any) -> str:
    return "true" if v is True else "false"


def _meta_fields(obj: Mapping[str, Any], namespaced: bool = True) -> dict[str, str]:
    md = obj.get("metadata") or {}
    fs = {"metadata.name": _str(md.get("name"))}
    if namespaced:
        fs["metadata.namespace"] = _str(md.get("namespace"))
    return fs


def _pod_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ips = status.get("podIPs") or []
    pod_ip = _str(ips[0].get("ip")) if ips else _str(status.get("podIP"))
    return {**_meta_fields(obj),
            "spec.nodeName": _str(spec.get("nodeName")), "spec.restartPolicy": _str(spec.get("restartPolicy")),
            "spec.schedulerName": _str(spec.get("schedulerName")),
            "spec.serviceAccountName": _str(spec.get("serviceAccountName")),
            "spec.hostNetwork": _bool(spec.get("hostNetwork")), "status.phase": _str(status.get("phase")),
            "status.podIP": pod_ip, "status.nominatedNodeName": _str(status.get("nominatedNodeName"))}


def core_event_view(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An Event in core/v1 shape whether it was stored as core/v1 or events.k8s.io/v1."""
    if "involvedObject" in obj or "regarding" not in obj and "note" not in obj:
        return dict(obj)
    out = {k: v for k, v in obj.items() if k in ("metadata", "reason", "type", "action", "eventTime", "series",
                                                 "related", "reportingController", "reportingInstance")}
    out["involvedObject"] = obj.get("regarding") or {}
    out["message"] = obj.get("note", "")
    out["source"] = obj.get("deprecatedSource") or {}
    out["firstTimestamp"] = obj.get("deprecatedFirstTimestamp")
    out["lastTimestamp"] = obj.get("deprecatedLastTimestamp")
    out["count"] = obj.get("deprecatedCount", 0)
    return out


def _event_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    ev = core_event_view(obj)
    io = ev.get("involvedObject") or {}
    source = _str((ev.get("source") or {}).get("component")) or _str(ev.get("reportingController"))
    fs = {f"involvedObject.{k}": _str(io.get(k))
          for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    fs.update({"reason": _str(ev.get("reason")), "reportingComponent": _str(ev.get("reportingController")),
               "source": source, "type": _str(ev.get("type"))})
    fs.update(_meta_fields(obj))
    return fs


def _field_set_for(resource: Resource) -> Callable[[Mapping[str, Any]], Mapping[str, str]]:
    kind = (resource.group, resource.kind)
    if kind == ("", "Pod"):
        return _pod_fields
    if kind in (("", "Event"), ("events.k8s.io", "Event")):
        return _event_fields
    if kind == ("", "Node"):
        return lambda o: {**_meta_fields(o, False),
                          "spec.unschedulable": _bool((o.get("spec") or {}).get("unschedulable"))}
    if kind == ("", "Namespace"):
        return lambda o: {**_meta_fields(o, False), "status.phase": _str((o.get("status") or {}).get("phase")),
                          "name": _str((o.get("metadata") or {}).get("name"))}
    if kind == ("", "Secret"):
        return lambda o: {**_meta_fields(o), "type": _str(o.get("type"))}
    if kind == ("certificates.k8s.io", "CertificateSigningRequest"):
        return lambda o: {**_meta_fields(o, False), "spec.signerName": _str((o.get("spec") or {}).get("signerName"))}
    if kind == ("apps", "ReplicaSet"):
        return lambda o: {**_meta_fields(o), "status.replicas": str(int((o.get("status") or {}).get("replicas", 0)))}
    namespaced = resource.namespaced
    return lambda o: _meta_fields(o, namespaced)


def parse_field_selector_or_error(resource: Resource, s: str) -> FieldSelector:
    """Parse and convert field labels for `resource`; raises SelectorError with upstream's text."""
    raw = parse_raw_field_selector(s)
    terms = []
    for t in raw.terms:
        field = _convert_label(resource, t.field)
        terms.append(FieldTerm(field, t.op, t.value))
    return FieldSelector(tuple(terms), _field_set_for(resource))


def parse_field_selector(resource: Resource, s: str) -> FieldSelector:
    """The `fieldSelector` query parameter for `resource`; a bad one is upstream's 400 BadRequest."""
    try:
        return parse_field_selector_or_error(resource, s)
    except SelectorError as e:
        raise bad_request(str(e)) from None


__all__ = [
    "FieldSelector", "FieldTerm", "LabelSelector", "Requirement", "SelectorError",
    "core_event_view", "escape_field_value", "format_label_selector", "label_selector_from_object",
    "label_value_errors", "parse_field_selector", "parse_field_selector_or_error", "parse_label_selector",
    "parse_label_selector_or_error", "parse_raw_field_selector", "qualified_name_errors", "validate_label_selector",
]
