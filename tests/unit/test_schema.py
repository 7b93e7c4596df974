from __future__ import annotations

import time

import json
from pathlib import Path

import pytest

from kubegate.schema import (
    definition, definition_for_gvk, definitions, patch_meta, type_error, unknown_fields,
)

CM = "io.k8s.api.core.v1.ConfigMap"


def test_loads_fast_and_has_meta() -> None:
    t = time.perf_counter()
    defs = definitions.__wrapped__()  # an uncached load
    assert time.perf_counter() - t < 0.25
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in defs
    assert len(defs) > 400


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


from tests.fixtures import GOLDENS
POD = "io.k8s.api.core.v1.Pod"


def test_facts_from_kubectl_binary() -> None:
    spec = definition("io.k8s.api.core.v1.PodSpec")
    c = spec.fields["containers"]
    assert (c.number, c.repeated, c.ref, c.patch_strategy, c.patch_merge_key, c.omitempty) == (
        2, True, "io.k8s.api.core.v1.Container", "merge", "name", False)
    assert spec.fields["volumes"].patch_strategy == "merge,retainKeys"
    assert spec.fields["terminationGracePeriodSeconds"].pointer
    assert spec.fields["overhead"].map_value == "io.k8s.apimachinery.pkg.api.resource.Quantity"
    assert spec.fields["overhead"].go_type == "v1.ResourceList"
    vol = definition("io.k8s.api.core.v1.Volume")
    assert vol.fields["volumeSource"].inline and vol.fields["volumeSource"].number == 2
    dep = definition("io.k8s.api.apps.v1.DeploymentSpec").fields
    assert dep["replicas"].pointer and dep["replicas"].type == "int32"
    assert list(definition("io.k8s.api.core.v1.ConfigMap").fields) == ["metadata", "immutable", "data", "binaryData"]
    # descriptions from the Python client's models (the text kubectl explain prints)
    assert definition(POD).description.startswith("Pod is a collection of containers")
    assert c.description.startswith("List of containers belonging to the pod.")
    # protobuf=false types come from Go metadata alone
    table = definition("io.k8s.apimachinery.pkg.apis.meta.v1.Table")
    assert list(table.fields) == ["metadata", "columnDefinitions", "rows"]
    assert definition("io.k8s.apimachinery.pkg.apis.meta.v1.TableRow").fields["cells"].type == "object"
    assert definition("io.k8s.apimachinery.pkg.apis.meta.v1.Verbs").list_wrapper


@pytest.mark.parametrize("gvk, name", [
    (("", "v1", "Pod"), POD),
    (("", "v1", "PodList"), "io.k8s.api.core.v1.PodList"),
    (("apps", "v1", "DeploymentList"), "io.k8s.api.apps.v1.DeploymentList"),
    (("autoscaling", "v1", "Scale"), "io.k8s.api.autoscaling.v1.Scale"),
    (("policy", "v1", "Eviction"), "io.k8s.api.policy.v1.Eviction"),
    (("events.k8s.io", "v1", "Event"), "io.k8s.api.events.v1.Event"),
    (("authorization.k8s.io", "v1beta1", "SubjectAccessReview"), "io.k8s.api.authorization.v1beta1.SubjectAccessReview"),
    (("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding"),
     "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding"),
    (("", "v1", "Status"), "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
    (("apps", "v1", "DeleteOptions"), "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
    (("meta.k8s.io", "v1", "Table"), "io.k8s.apimachinery.pkg.apis.meta.v1.Table"),
    (("meta.k8s.io", "v1", "PartialObjectMetadataList"), "io.k8s.apimachinery.pkg.apis.meta.v1.PartialObjectMetadataList"),
])
def test_gvks(gvk: tuple[str, str, str], name: str) -> None:
    d = definition_for_gvk(*gvk)
    assert d is not None and d.name == name


def test_every_served_resource_has_its_schema() -> None:
    from kubegate.api.resources import RESOURCES
    for r in RESOURCES:
        if r.group.endswith("kubegate.dev"):  # kubegate's own review kinds have no upstream schema
            continue
        if r.group == "apiextensions.k8s.io":  # the CRD list is served empty, read-only and without protobuf
            continue
        assert definition_for_gvk(r.group, r.version, r.kind) is definition(r.schema), r.kind
        if r.persisted:  # review kinds have no List
            assert definition_for_gvk(r.group, r.version, r.list_kind) is not None, r.list_kind


def test_type_error_matches_golden() -> None:
    golden = json.loads((GOLDENS / "errors/400-configmap-data-not-string.json").read_text())
    msg = type_error(CM, golden["request"]["body"])
    assert msg is not None and golden["response"]["body"]["message"].endswith(msg)
    assert msg == "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"


@pytest.mark.parametrize("defname, body, message", [
    (POD, {"spec": {"containers": [{"name": 5}]}},
     "json: cannot unmarshal number into Go struct field Container.spec.containers.name of type string"),
    (POD, {"spec": {"containers": {"name": "a"}}},
     "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"),
    (POD, {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}},
     "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort "
     "of type int32"),
    (POD, {"spec": {"activeDeadlineSeconds": 1.5}},
     "json: cannot unmarshal number 1.5 into Go struct field PodSpec.spec.activeDeadlineSeconds of type int64"),
    (POD, {"spec": {"containers": [{"imagePullPolicy": True}]}},
     "json: cannot unmarshal bool into Go struct field Container.spec.containers.imagePullPolicy "
     "of type v1.PullPolicy"),
    (POD, {"spec": "x"}, "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec"),
    # inline structs report the outer struct, as Go flattens embedded fields
    (POD, {"spec": {"volumes": [{"name": "v", "configMap": []}]}},
     "json: cannot unmarshal array into Go struct field Volume.spec.volumes.configMap "
     "of type v1.ConfigMapVolumeSource"),
    (POD, {"metadata": {"creationTimestamp": 5}},
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp of type string"),
    (POD, {"spec": {"containers": [{"resources": {"limits": {"cpu": True}}}]}},
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("io.k8s.api.core.v1.Service", {"spec": {"ports": [{"targetPort": True}]}},
     "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32"),
    ("io.k8s.api.core.v1.Secret", {"data": {"a": "abc"}}, "illegal base64 data at input byte 0"),
    ("io.k8s.api.core.v1.Secret", {"data": {"a": 1}},
     "json: cannot unmarshal number into Go struct field Secret.data of type []uint8"),
    ("io.k8s.api.authorization.v1.SubjectAccessReview", {"spec": {"extra": {"k": "v"}}},
     "json: cannot unmarshal string into Go struct field SubjectAccessReviewSpec.spec.extra of type v1.ExtraValue"),
    # the first mismatch in document order wins...
    (CM, {"data": {"a": 1}, "metadata": {"name": 2}},
     "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"),
    # ...unless a type's own UnmarshalJSON fails later: that stops decoding and is what Go reports
    (POD, {"metadata": {"name": 1}, "spec": {"containers": [{"resources": {"requests": {"cpu": "1x"}}}]}},
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
])
def test_type_errors(defname: str, body: dict, message: str) -> None:
    assert type_error(defname, body) == message


def test_type_error_accepts_valid_shapes() -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": None},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                                     "resources": {"limits": {"cpu": 1, "memory": "1Gi"}, "requests": {"cpu": 0.5}},
                                     "securityContext": {"runAsNonRoot": False}}],
                     "volumes": None, "terminationGracePeriodSeconds": 30}}
    assert type_error(POD, body) is None
    svc = {"spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}}
    assert type_error("io.k8s.api.core.v1.Service", svc) is None
    sec = {"data": {"a": "YWJj", "b": ""}}
    assert type_error("io.k8s.api.core.v1.Secret", sec) is None


def test_patch_meta_follows_struct_tags() -> None:
    from kubegate.api.patch import FieldPatchMeta
    pod = patch_meta(POD)
    spec = pod.field("spec")
    assert isinstance(spec, FieldPatchMeta) and not spec.is_list and spec.child is not None
    containers = spec.child.field("containers")
    assert containers is not None
    assert (containers.strategies, containers.merge_key, containers.is_list) == (frozenset({"merge"}), "name", True)
    assert spec.child.field("volumes").strategies == frozenset({"merge", "retainKeys"})  # type: ignore[union-attr]
    ports = containers.child.field("ports")  # type: ignore[union-attr]
    assert ports is not None and ports.merge_key == "containerPort"
    # inline fields are flattened; maps of quantities and special types have no child
    assert pod.field("metadata").child.field("ownerReferences").merge_key == "uid"  # type: ignore[union-attr]
    assert containers.child.field("resources").child.field("limits").child is None  # type: ignore[union-attr]
    vol = spec.child.field("volumes").child  # type: ignore[union-attr]
    assert vol.field("configMap") is not None and vol.field("nope") is None
    assert pod.field("nope") is None


def test_generator_reproduces_the_shipped_tables(tmp_path: Path) -> None:
    """tools/gen_schema.py rebuilds definitions.json.gz from kubectl alone (markers carried over)."""
    import gzip
    import importlib.util
    import sys

    kubectl = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.33")
    if not kubectl.exists():
        pytest.skip("kubectl 1.33 is not installed")
    tool = Path(__file__).resolve().parents[2] / "tools/gen_schema.py"
    spec = importlib.util.spec_from_file_location("gen_schema", tool)
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    sys.modules["gen_schema"] = gen
    spec.loader.exec_module(gen)
    shipped = Path(__file__).resolve().parents[2] / "src/kubegate/schema/definitions.json.gz"
    data, _ = gen.generate(kubectl, None, shipped)
    assert data == json.loads(gzip.decompress(shipped.read_bytes()))
