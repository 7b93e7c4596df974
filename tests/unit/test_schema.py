from __future__ import annotations

import time

from kubegate.schema import definition, definition_for_gvk, definitions, unknown_fields

CM = "io.k8s.api.core.v1.ConfigMap"


def test_loads_fast_and_has_meta() -> None:
    t = time.perf_counter()
    defs = definitions()
    assert time.perf_counter() - t < 1.0
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in defs


def test_field_facts() -> None:
    om = definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    owners = om.fields["ownerReferences"]
    assert (owners.number, owners.repeated, owners.patch_strategy, owners.patch_merge_key) == (13, True, "merge", "uid")
    assert owners.list_type == "map" and owners.list_map_keys == ("uid",)
    assert om.by_number[11].name == "labels" and om.by_number[11].map_value == "string"
    assert om.fields["deletionGracePeriodSeconds"].pointer
    assert om.description.startswith("ObjectMeta is metadata that all persisted resources must have")
    sec = definition("io.k8s.api.core.v1.Secret")
    assert sec.fields["data"].map_value == "bytes" and sec.fields["immutable"].pointer


def test_gvk_lookup() -> None:
    assert definition_for_gvk("", "v1", "ConfigMap") is definition(CM)
    assert definition_for_gvk("", "v1", "Nope") is None


def test_unknown_fields_top_level_like_golden() -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"}, "data": {}, "spec": {"foo": 1}}
    assert unknown_fields(CM, body) == ["spec"]


def test_unknown_fields_nested_and_maps() -> None:
    body = {"metadata": {"name": "x", "labels": {"anything": "ok"}, "nam": "y",
                         "ownerReferences": [{"uid": "1"}, {"uidd": "2"}]},
            "data": {"free": "form"}}
    assert unknown_fields(CM, body) == ["metadata.nam", "metadata.ownerReferences[1].uidd"]
    q = {"spec": {"hard": {"cpu": "1"}, "scopeSelector": {"matchExpressions": [{"scopeName": "a", "op": "In"}]}}}
    assert unknown_fields("io.k8s.api.core.v1.ResourceQuota", q) == ["spec.scopeSelector.matchExpressions[0].op"]
