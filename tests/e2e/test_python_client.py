"""The official kubernetes Python client against kubegate."""
from __future__ import annotations

import pytest
from kubernetes import client, config, watch

from tests.e2e.cluster import Cluster


@pytest.fixture
def api(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=cluster.admin_conf)


def test_version_with_trailing_slash(api: client.ApiClient) -> None:
    assert client.VersionApi(api).get_code().minor == "36"


def test_crud_and_list(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py", labels={"a": "b"}), data={"k": "v"})
    created = core.create_namespaced_config_map(ns, cm)
    assert created.metadata.uid and created.data == {"k": "v"}
    got = core.read_namespaced_config_map("py", ns)
    assert got.metadata.resource_version == created.metadata.resource_version
    got.data["k"] = "v2"
    updated = core.replace_namespaced_config_map("py", ns, got)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    items = core.list_namespaced_config_map(ns, label_selector="a=b").items
    assert [i.metadata.name for i in items] == ["py"]
    core.delete_namespaced_config_map("py", ns)
    with pytest.raises(client.ApiException) as e:
        core.read_namespaced_config_map("py", ns)
    assert e.value.status == 404


def test_pagination(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for i in range(5):
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"p{i}")))
    seen: list[str] = []
    cont = None
    while True:
        page = core.list_namespaced_config_map(ns, limit=2, _continue=cont)
        seen += [i.metadata.name for i in page.items]
        cont = page.metadata._continue
        if not cont:
            break
    assert [n for n in seen if n != "kube-root-ca.crt"] == [f"p{i}" for i in range(5)]  # the root CA publisher's


def test_watch_stream(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1")))
    core.delete_namespaced_config_map("w1", ns)
    w = watch.Watch()
    events = []
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=2):
        events.append((ev["type"], ev["object"].metadata.name))
        if len(events) == 2:
            w.stop()
    assert events == [("ADDED", "w1"), ("DELETED", "w1")]
