"""EncryptionConfiguration loading against upstream's own fixtures and validation messages."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kubegate.storage.encryption.config import KMS_V1_DEPRECATED, ConfigError, load, parse
from kubegate.storage.encryption.transformer import PrefixTransformers
from tests.fixtures import FIXTURES

ROOT = FIXTURES / "encryption-config"
KMS_FREE = ["aes/aes-gcm.yaml", "aes/aes-cbc-multiple-keys.json", "aes/aes-cbc-multiple-keys-reversed.json",
            "aes/aes-cbc-multiple-providers.json", "aes/aes-cbc-multiple-providers-reversed.json"]
WITH_KMS = ["aes-cbc-first.yaml", "aes-gcm-first.yaml", "identity-first.yaml", "kms-first.yaml", "kmsv2-first.yaml",
            "legacy.yaml", "secret-box-first.yaml", "kms/default-timeout.yaml", "kms/multiple-providers.yaml",
            "kms/multiple-providers-mixed.yaml", "kms/multiple-providers-kmsv2.yaml"]
INVALID = {
    "invalid-aes-gcm.yaml": "error while parsing file: resources[0].providers[0].aesgcm.keys: Required value: "
                            "at least one keys is required",
    "invalid-typo.yaml": 'strict decoding error: unknown field "resources[0].providers[3].kms.pandas"',
    "kms/invalid-content.yaml": 'encryption provider configuration file "{path}" is empty',
    "kms/invalid-gvk.yaml": "error decoding encryption provider configuration file",
    "kms/invalid-config-type.yaml": 'no kind "EncryptionConfigurations" is registered for version '
                                    '"apiserver.config.k8s.io/v1"',
    "kms/invalid-apiversion.yaml": 'resources[0].providers[0].kms.apiVersion: Invalid value: "v3": unsupported '
                                   'apiVersion apiVersion for KMS provider, only v1 and v2 are supported',
}


def test_every_fixture_is_covered() -> None:
    valid = {str(p.relative_to(ROOT / "valid-configs")) for p in (ROOT / "valid-configs").rglob("*")
             if p.suffix in (".yaml", ".json")}
    invalid = {str(p.relative_to(ROOT / "invalid-configs")) for p in (ROOT / "invalid-configs").rglob("*")
               if p.suffix in (".yaml", ".json")}
    assert valid == set(KMS_FREE + WITH_KMS)
    assert invalid == set(INVALID)


@pytest.mark.parametrize("name", KMS_FREE + WITH_KMS)
def test_valid_fixtures_decode_and_validate(name: str) -> None:
    path = ROOT / "valid-configs" / name
    cfg = parse(path.read_bytes(), str(path))
    assert cfg.resources and all(rc.providers for rc in cfg.resources)


def test_legacy_kind_decodes_with_defaults() -> None:
    path = ROOT / "valid-configs" / "legacy.yaml"
    cfg = parse(path.read_bytes(), str(path))
    (rc,) = cfg.resources
    assert rc.resources == ["secrets", "namespaces"]
    assert [p.type for p in rc.providers] == ["identity", "aesgcm", "kms", "aescbc", "secretbox"]
    assert [k.name for k in rc.providers[1].keys] == ["key1", "key2"]
    assert rc.providers[2].kms == {"name": "testprovider", "endpoint": "unix:///tmp/testprovider.sock",
                                   "cachesize": 10, "apiVersion": "v1", "timeout": "3s"}


@pytest.mark.parametrize("name", KMS_FREE)
def test_kms_free_fixtures_build(name: str) -> None:
    _, transformers = load(ROOT / "valid-configs" / name)
    assert isinstance(transformers.for_resource(("", "ignored" if "cbc" in name else "secrets")), PrefixTransformers)


@pytest.mark.parametrize("name", [n for n in WITH_KMS if n != "kms/multiple-providers-kmsv2.yaml"])
def test_kms_v1_is_refused_with_upstreams_gate_message(name: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(ROOT / "valid-configs" / name)
    assert KMS_V1_DEPRECATED in str(e.value)


def test_kms_v2_builds_one_provider_per_entry() -> None:
    _, transformers = load(ROOT / "valid-configs" / "kms" / "multiple-providers-kmsv2.yaml")
    assert [p.prefix for p in transformers.kms] == [b"k8s:enc:kms:v2:foo:", b"k8s:enc:kms:v2:bar:"]
    assert [p.timeout for p in transformers.kms] == [15.0, 15.0]


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_fixtures_fail_with_upstreams_error(name: str) -> None:
    path = ROOT / "invalid-configs" / name
    with pytest.raises(ConfigError) as e:
        load(path)
    assert INVALID[name].format(path=path) in str(e.value)
    assert str(e.value).startswith("error while parsing file: ")


KEY32 = base64.b64encode(b"k" * 32).decode()


def _cfg(body: str) -> str:
    return "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n" + body


@pytest.mark.parametrize("body,message", [
    ("  - resources: [secrets]\n    providers: [{aescbc: {keys: [{name: k, secret: 'not base64!'}]}}]\n",
     'resources[0].providers[0].aescbc.keys[0].secret: Invalid value: "REDACTED": secrets must be base64 encoded'),
    ("  - resources: [secrets]\n    providers: [{aesgcm: {keys: [{name: k, secret: c2hvcnQ=}]}}]\n",
     'resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: "REDACTED": secret is not of the expected '
     'length, got 5, expected one of [16 24 32]'),
    ("  - resources: [secrets]\n    providers: [{secretbox: {keys: [{name: k, secret: c2VjcmV0IGlzIHNlY3VyZQ==}]}}]\n",
     'secret is not of the expected length, got 16, expected one of [32]'),
    ("  - resources: [secrets, secrets]\n    providers: [{identity: {}}]\n",
     'resources[0].resources: Invalid value: ["secrets","secrets"]: the same resource cannot be specified '
     'multiple times'),
    ("  - resources: [secrets, '*.']\n    providers: [{identity: {}}]\n",
     "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed"),
    ("  - resources: ['*']\n    providers: [{identity: {}}]\n",
     "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"),
    ("  - resources: [Secrets]\n    providers: [{identity: {}}]\n", "resource name should not contain capital letters"),
    ("  - resources: [events.events.k8s.io]\n    providers: [{identity: {}}]\n",
     "'*.events.k8s.io' objects are stored using the 'events' API group in etcd"),
    ("  - resources: [secrets]\n    providers: [{rot13: {}}]\n", 'unknown field "resources[0].providers[0].rot13"'),
    ("  - resources: [secrets]\n    providers: [{identity: {}, aescbc: {keys: [{name: k, secret: " + KEY32 + "}]}}]\n",
     "more than one provider specified in a single element, should split into different list elements"),
    ("  - resources: [secrets]\n    providers: [{aescbc: {keys: [{name: k, secret: " + KEY32 + "}, {name: k, secret: "
     + KEY32 + "}]}}]\n", 'resources[0].providers[0].aescbc.keys[1].name: Duplicate value: "k"'),
    ("  - resources: [secrets]\n    providers: []\n",
     "resources[0].providers: Required value: at least one resources[0].providers is required"),
    ("  - resources: ['*.']\n    providers: [{identity: {}}]\n  - resources: [configmaps]\n    providers: [{identity: {}}]\n",
     'error while building transformers: resource "configmaps" is masked by earlier rule "*."'),
])
def test_bad_configs_are_refused(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "enc.yaml"
    f.write_text(_cfg(body))
    with pytest.raises(ConfigError) as e:
        load(f)
    assert message in str(e.value)
    assert KEY32 not in str(e.value)


def test_several_errors_aggregate_in_brackets(tmp_path: Path) -> None:
    f = tmp_path / "enc.yaml"
    f.write_text(_cfg("  - resources: [Secrets, deployments.extensions]\n    providers: [{identity: {}}]\n"))
    with pytest.raises(ConfigError) as e:
        load(f)
    assert str(e.value) == (
        'error while parsing file: [resources[0].resources[0]: Invalid value: "Secrets": resource name should not '
        'contain capital letters, resources[0].resources[1]: Invalid value: "deployments.extensions": '
        "'extensions' group has been removed and cannot be used for encryption]")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='error reading encryption provider configuration file ".*nope.yaml"'):
        load(tmp_path / "nope.yaml")


def test_wildcards_resolve_exact_then_group_then_all(tmp_path: Path) -> None:
    f = tmp_path / "enc.yaml"
    f.write_text(_cfg(
        f"  - resources: [secrets]\n    providers: [{{aescbc: {{keys: [{{name: a, secret: {KEY32}}}]}}}}]\n"
        f"  - resources: ['*.apps']\n    providers: [{{aesgcm: {{keys: [{{name: g, secret: {KEY32}}}]}}}}]\n"
        f"  - resources: ['*.*']\n    providers: [{{secretbox: {{keys: [{{name: s, secret: {KEY32}}}]}}}}]\n"))
    _, ts = load(f)

    def prefix(gr: tuple[str, str]) -> bytes:
        t = ts.for_resource(gr)
        assert isinstance(t, PrefixTransformers)
        return t.write_prefix
    assert prefix(("", "secrets")) == b"k8s:enc:aescbc:v1:a:"
    assert prefix(("apps", "deployments")) == b"k8s:enc:aesgcm:v1:g:"
    assert prefix(("", "configmaps")) == b"k8s:enc:secretbox:v1:s:"
    assert prefix(("rbac.authorization.k8s.io", "roles")) == b"k8s:enc:secretbox:v1:s:"
