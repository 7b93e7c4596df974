"""Offline input: YAML/JSON manifests (files or directories) turned into an engine Snapshot.

Multi-document YAML, JSON, and `kind: List` are accepted. Namespaces, Pods, workloads' pod
templates and NetworkPolicies are used; other kinds are skipped. NetworkPolicies go through the
API server's own defaulting and validation, so a policy the server would reject with a 422 is
rejected here with the same message. Every error names the file and line.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import yaml

from kubegate.api import defaults, errors, validation
from kubegate.api.resources import lookup

from .model import ModelError, Snapshot

_NETPOL = lookup("networking.k8s.io", "v1", "networkpolicies")
_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    pass


def _files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in _SUFFIXES)
        elif p.is_file():
            yield p
        else:
            raise ManifestError(f"{raw}: no such file or directory")


def _documents(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, document) pairs; JSON is a subset of YAML, so one loader reads both."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read: {e}") from None
    if path.suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
        if isinstance(doc, dict) and doc.get("kind") == "List":
            yield from ((1, item) for item in doc.get("items") or [])  # JSON keeps no positions
        else:
            yield 1, doc
        return
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            obj = loader.construct_document(node)
            if isinstance(obj, dict) and obj.get("kind") == "List" and isinstance(node, yaml.MappingNode):
                items = next((v for k, v in node.value if k.value == "items"), None)
                item_nodes = items.value if isinstance(items, yaml.SequenceNode) else []
                for item, item_node in zip(obj.get("items") or [], item_nodes):
                    yield item_node.start_mark.line + 1, item
                continue
            yield node.start_mark.line + 1, obj
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ManifestError(f"{path}{line}: invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ManifestError(f"{path}: invalid YAML: {e}") from None
    finally:
        loader.dispose()


def _check(obj: dict[str, Any]) -> None:
    """What the API server would say to a NetworkPolicy: defaulting, then validation (422 text)."""
    if obj.get("kind") != "NetworkPolicy" or _NETPOL is None:
        return
    o = json.loads(json.dumps(obj))
    if isinstance(o.get("metadata"), dict):
        o["metadata"].setdefault("namespace", "default")  # as kubectl apply fills it in
    defaults.apply_defaults(_NETPOL, o)
    causes = validation.validate(_NETPOL, o, None)
    if causes:
        name = (o.get("metadata") or {}).get("name") or ""
        raise ModelError(errors.invalid(_NETPOL.kind, name, causes, _NETPOL.group).message)


def load(paths: list[str]) -> Snapshot:
    """The snapshot the manifests describe; ManifestError("file:line: ...") on the first bad one."""
    snap = Snapshot()
    for f in _files(paths):
        for line, obj in _documents(f):
            if obj is None:
                continue
            where = f"{f}:{line}"
            if not isinstance(obj, dict):
                raise ManifestError(f"{where}: expected a Kubernetes object, got {type(obj).__name__}")
            if not obj.get("kind") or not obj.get("apiVersion"):
                raise ManifestError(f"{where}: object has no {'kind' if not obj.get('kind') else 'apiVersion'}")
            try:
                _check(obj)
                snap.add(obj)
            except (ModelError, TypeError, AttributeError, ValueError) as e:
                raise ManifestError(f"{where}: {e}") from None
    return snap
