from __future__ import annotations

import pytest

from kubegate.protobuf import ProtobufError, decode_message, decode_object, encode_message, encode_object
from kubegate.protobuf.codec import format_duration, format_time, parse_duration, parse_time
from kubegate.protobuf.wire import decode_varint, encode_varint, to_signed

# Hand-computed from the proto facts: runtime.Unknown{typeMeta{apiVersion=1,kind=2}, raw=2,
# contentEncoding=3, contentType=4}; ObjectMeta writes every non-pointer field (1..8, Time empty);
# ConfigMap.data is field 2 with {key=1,value=2} entries.
TINY_CM = (b"k8s\x00"
           b"\x0a\x0f\x0a\x02v1\x12\x09ConfigMap"
           b"\x12\x1e"
           b"\x0a\x14\x0a\x02cm\x12\x00\x1a\x02ns\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00"
           b"\x12\x06\x0a\x01a\x12\x01b"
           b"\x1a\x00\x22\x00")


def test_tiny_configmap_bytes_match_upstream() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"},
           "data": {"a": "b"}}
    assert encode_object(obj) == TINY_CM
    assert decode_object(TINY_CM) == {"kind": "ConfigMap", "apiVersion": "v1",
                                      "metadata": {"name": "cm", "namespace": "ns"}, "data": {"a": "b"}}


def test_configmap_field_order_follows_go_struct() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"b": "2", "a": "1"}},
           "data": {"z": "", "k": "v"}, "binaryData": {"bin": "AAEC"}, "immutable": True}
    out = decode_object(encode_object(obj))
    assert list(out) == ["kind", "apiVersion", "metadata", "immutable", "data", "binaryData"]
    assert out["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert out["data"] == {"k": "v", "z": ""}
    assert out["binaryData"] == {"bin": "AAEC"}


def test_secret_bytes_and_pointer_false_survive() -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"},
           "immutable": False, "data": {"tls.key": "AP8=", "empty": ""}, "type": "Opaque"}
    out = decode_object(encode_object(obj))
    assert out == {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s", "namespace": "d"},
                   "immutable": False, "data": {"empty": "", "tls.key": "AP8="}, "type": "Opaque"}


def test_resourcequota_quantities_and_empty_status() -> None:
    obj = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
           "spec": {"hard": {"cpu": "500m", "pods": "10"}, "scopes": ["BestEffort"]}}
    out = decode_object(encode_object(obj))
    # status is a non-pointer struct: Go prints it as {} even when nothing was sent
    assert out["spec"] == {"hard": {"cpu": "500m", "pods": "10"}, "scopes": ["BestEffort"]}
    assert out["status"] == {}


def test_times_metadata_and_managed_fields() -> None:
    meta = {"name": "m", "creationTimestamp": "2026-11-23T11:16:50Z", "generation": 3,
            "deletionGracePeriodSeconds": 0,
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                               "time": "2026-11-23T11:16:50Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}]}
    data = encode_message("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", meta)
    out = decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", data)
    assert out == meta


def test_watch_event_embeds_object() -> None:
    ev = {"type": "ADDED", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}}}
    out = decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
                         encode_message("io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent", ev))
    assert out == ev


def test_negative_ints_use_ten_byte_varints() -> None:
    assert encode_varint(-1) == b"\xff" * 9 + b"\x01"
    v, pos = decode_varint(encode_varint(-5), 0)
    assert pos == 10 and to_signed(v, 32) == -5 and to_signed(v, 64) == -5
    st = {"code": -1, "status": "Failure"}
    out = decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Status",
                         encode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Status", st))
    assert out["code"] == -1 and out["metadata"] == {}


def test_go_durations_and_times() -> None:
    assert format_duration(3600 * 10**9) == "1h0m0s"
    assert format_duration(90 * 10**9) == "1m30s"
    assert format_duration(1500 * 10**6) == "1.5s"
    assert format_duration(500 * 10**6) == "500ms"
    assert format_duration(0) == "0s"
    assert parse_duration("1h0m0s") == 3600 * 10**9 and parse_duration("1.5s") == 1500 * 10**6
    assert format_time(*parse_time("2026-11-23T11:16:50Z"), micro=False) == "2026-11-23T11:16:50Z"
    assert format_time(*parse_time("2026-11-23T11:16:50.123456Z"), micro=True) == "2026-11-23T11:16:50.123456Z"
    assert parse_time("2026-11-23T12:16:50+01:00")[0] == parse_time("2026-11-23T11:16:50Z")[0]


@pytest.mark.parametrize("body, message", [
    (b'{"kind":"ConfigMap"}', "does not appear to be a protobuf message"),
    (b"k8s\x00\x0a\x05\x0a\x02v1", "invalid protobuf envelope"),
    (b"k8s\x00\x0a\x04\x0a\x02v1", "kind is not set"),
    (b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Widget", 'no kind "Widget" is registered for version "v1"'),
    (b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x03\x0a\x05a", "invalid protobuf for ConfigMap"),
])
def test_malformed_input(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode_object(body)


def test_encode_rejects_wrong_types() -> None:
    with pytest.raises(ProtobufError, match="illegal base64"):
        encode_object({"apiVersion": "v1", "kind": "Secret", "data": {"a": "!!"}})
    with pytest.raises(ProtobufError, match="expected a string"):
        encode_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}})
