"""Upstream's default RBAC policy (v1.36 bootstrap roles and bindings) plus kubeadm's bindings.

The data files are upstream's objects as a fresh kube-apiserver serves them (aggregated rules of
admin/edit/view included). They are parsed once per process with libyaml; every call returns fresh
copies so callers may mutate them (e.g. add server-set metadata) freely.
"""
from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import orjson
import yaml

# (resource plural, data file), in the order the objects are created at startup.
_FILES: tuple[tuple[str, str], ...] = (
    ("clusterroles", "clusterroles.yaml"),
    ("clusterrolebindings", "clusterrolebindings.yaml"),
    ("clusterrolebindings", "kubeadm-clusterrolebindings.yaml"),
    ("roles", "roles.yaml"),
    ("rolebindings", "rolebindings.yaml"),
)


@functools.cache
def _serialized() -> bytes:
    data = resources.files("kubegate.authz") / "bootstrap_data"
    policy: list[tuple[str, dict[str, Any]]] = []
    for plural, filename in _FILES:
        doc = yaml.load(data.joinpath(filename).read_bytes(), Loader=yaml.CSafeLoader)
        policy.extend((plural, item) for item in doc["items"])
    return orjson.dumps(policy)


def default_policy() -> list[tuple[str, dict[str, Any]]]:
    """Every default object as (resource plural, object), ClusterRoles first."""
    return [(plural, obj) for plural, obj in orjson.loads(_serialized())]
