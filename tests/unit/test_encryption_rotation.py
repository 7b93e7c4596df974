"""The rotation planner: which entries rotate, the configs a rotation moves through, and resuming."""
from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubegate.storage.encryption import rotation as plan
from kubegate.storage.encryption.config import build, parse
from kubegate.storage.encryption.transformer import PrefixTransformers, TransformerSet, TransformFailure


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


RAW: dict[str, Any] = {
    "apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
    "resources": [
        {"resources": ["secrets"], "providers": [{"aescbc": {"keys": [{"name": "k1", "secret": _key()}]}},
                                                 {"identity": {}}]},
        {"resources": ["configmaps", "*.apps"], "providers": [{"identity": {}}]},
        {"resources": ["*.*"], "providers": [{"secretbox": {"keys": [{"name": "sb", "secret": _key()}]}}]},
    ],
}
SECRETS = ("", "secrets")


def _ts(raw: dict[str, Any]) -> TransformerSet:
    return build(parse(plan.dump_config(raw), "enc.yaml"))


def test_key_labels_and_writers() -> None:
    assert plan.key_label(b"k8s:enc:aescbc:v1:k1:\x00\x01") == "aescbc:k1"
    assert plan.key_label(b'{"kind":"Secret"}') == "identity"
    assert plan.key_label(b"k8s:enc:aescbc:v2:x:y") == "unknown"
    assert plan.key_label(b"k8s:enc:kms:v2:vault:\x0a\x01") == "kms:vault"
    assert plan.writer_label(b"k8s:enc:secretbox:v1:sb:") == "secretbox:sb"
    assert plan.writer_label(b"") == "identity"
    assert plan.written_by(b"k8s:enc:aescbc:v1:k1:abc", b"k8s:enc:aescbc:v1:k1:")
    assert not plan.written_by(b"k8s:enc:aescbc:v1:k10:abc", b"k8s:enc:aescbc:v1:k1:")
    assert plan.written_by(b"{}", b"") and not plan.written_by(b"k8s:enc:aescbc:v1:k1:abc", b"")


def test_entry_lookup_is_exact_then_group_then_everything() -> None:
    entries = plan.resource_entries(RAW)
    assert plan.entry_index(entries, SECRETS) == 0
    assert plan.entry_index(entries, ("apps", "deployments")) == 1
    assert plan.entry_index(entries, ("", "pods")) == 2
    assert plan.entry_index([["secrets"]], ("", "pods")) is None


def test_selection_defaults_to_encrypted_entries_and_names_resolve() -> None:
    assert plan.select_entries(RAW, []) == [0, 2]
    assert plan.select_entries(RAW, ["configmaps", "secrets"]) == [0, 1]
    with pytest.raises(plan.RotationError, match='"secrets" is not listed'):
        plan.select_entries({"resources": [{"resources": ["configmaps"], "providers": [{"identity": {}}]}]},
                            ["secrets"])


def test_covered_resources_follow_their_entry() -> None:
    stored = [("/registry/secrets", SECRETS), ("/registry/configmaps", ("", "configmaps")),
              ("/registry/deployments", ("apps", "deployments")), ("/registry/pods", ("", "pods"))]
    entries = plan.resource_entries(RAW)
    assert plan.covered(entries, [0], stored) == stored[:1]
    assert plan.covered(entries, [1, 2], stored) == stored[1:]


def test_same_type_rotation_adds_the_writer_key_and_retires_only_old_writer_keys() -> None:
    new = _key()
    b, c = plan.rotation_configs(RAW, [0], "k2", {0: new}, None)
    assert b["resources"][0]["providers"][0] == {"aescbc": {"keys": [{"name": "k2", "secret": new},
                                                                     RAW["resources"][0]["providers"][0]["aescbc"]["keys"][0]]}}
    assert c["resources"][0]["providers"] == [{"aescbc": {"keys": [{"name": "k2", "secret": new}]}}, {"identity": {}}]
    assert b["resources"][1:] == RAW["resources"][1:] == c["resources"][1:]
    assert RAW["resources"][0]["providers"][0]["aescbc"]["keys"][0]["name"] == "k1"  # input untouched

    a_ts, b_ts, c_ts = _ts(RAW), _ts(b), _ts(c)
    old_value = a_ts.for_resource(SECRETS).to_storage(b"plain", b"/registry/secrets/ns/x")
    reader = b_ts.for_resource(SECRETS)
    assert reader.from_storage(old_value, b"/registry/secrets/ns/x") == (b"plain", True)  # B reads A, stale
    assert isinstance(reader, PrefixTransformers) and reader.write_prefix == b"k8s:enc:aescbc:v1:k2:"
    new_value = reader.to_storage(b"plain", b"/registry/secrets/ns/x")
    assert c_ts.for_resource(SECRETS).from_storage(new_value, b"/registry/secrets/ns/x") == (b"plain", False)
    with pytest.raises(TransformFailure):
        c_ts.for_resource(SECRETS).from_storage(old_value, b"/registry/secrets/ns/x")  # k1 is gone


def test_type_change_and_plaintext_entries_get_a_new_first_provider() -> None:
    new = _key()
    b, c = plan.rotation_configs(RAW, [0, 1], "k2", {0: new, 1: new}, "aesgcm")
    assert b["resources"][0]["providers"][0] == {"aesgcm": {"keys": [{"name": "k2", "secret": new}]}}
    assert b["resources"][0]["providers"][1:] == RAW["resources"][0]["providers"]
    assert c["resources"][0]["providers"][1:] == [{"identity": {}}]  # the old aescbc writer retired
    b2, c2 = plan.rotation_configs(RAW, [1], "k2", {1: new}, None)  # identity writer: aescbc by default
    assert b2["resources"][1]["providers"] == [{"aescbc": {"keys": [{"name": "k2", "secret": new}]}},
                                               {"identity": {}}]
    assert c2["resources"][1]["providers"] == [{"aescbc": {"keys": [{"name": "k2", "secret": new}]}}]
    for raw in (b, c, b2, c2):
        _ts(raw)  # every config a rotation writes is one the server accepts


def test_rotation_refuses_a_taken_name_and_kms_writers() -> None:
    with pytest.raises(plan.RotationError, match='"k1" already exists'):
        plan.rotation_configs(RAW, [0], "k1", {0: _key()}, None)
    kms = {"resources": [{"resources": ["secrets"], "providers": [{"kms": {"name": "x"}}]}]}
    with pytest.raises(plan.RotationError, match="kms"):
        plan.rotation_configs(kms, [0], "k2", {0: _key()}, None)


def _state(phase: str) -> plan.RotationState:
    return plan.RotationState(phase, "k2", [0], "A\n", "B\n", "C\n")


@pytest.mark.parametrize(("phase", "disk", "action"), [
    (plan.PLANNED, b"A\n", plan.WRITE_WITH_NEW),
    (plan.PLANNED, b"B\n", plan.REENCRYPT),       # crashed after writing B, before recording it
    (plan.WRITER, b"B\n", plan.REENCRYPT),
    (plan.VERIFIED, b"B\n", plan.WRITE_RETIRED),
    (plan.VERIFIED, b"C\n", plan.FINISH),          # crashed after writing C, before removing the state
])
def test_every_crash_point_resumes(phase: str, disk: bytes, action: str) -> None:
    assert plan.next_action(_state(phase), disk) == action


@pytest.mark.parametrize(("phase", "disk"), [
    (plan.PLANNED, b"C\n"), (plan.WRITER, b"A\n"), (plan.WRITER, b"C\n"), (plan.VERIFIED, b"A\n"),
    (plan.PLANNED, b"edited\n"),
])
def test_a_config_changed_elsewhere_stops_the_rotation(phase: str, disk: bytes) -> None:
    with pytest.raises(plan.RotationError, match="changed outside this rotation"):
        plan.next_action(_state(phase), disk)


def test_state_round_trips_and_damage_is_reported() -> None:
    st = _state(plan.WRITER)
    assert plan.RotationState.from_json(st.to_json()) == st
    with pytest.raises(plan.RotationError, match="damaged"):
        plan.RotationState.from_json({"phase": "writer"})


def test_dumped_config_is_yaml_of_the_same_document() -> None:
    assert yaml.safe_load(plan.dump_config(RAW)) == RAW


def test_raw_store_swaps_bytes_only_when_key_revision_and_bytes_still_match(tmp_path: Path) -> None:
    from kubegate.cli.secrets_encrypt import RawStore
    from kubegate.storage.sqlite import SQLiteStore

    db = tmp_path / "kubegate.db"

    async def seed() -> None:
        s = SQLiteStore(str(db))
        await s.create("/registry/secrets/ns/a", b"old-a")
        await s.create("/registry/secrets/ns/b", b"old-b")
        await s.update("/registry/secrets/ns/b", b"server-b", None)  # the server wrote b meanwhile
        await s.close()
    asyncio.run(seed())
    rw = RawStore(db, writable=True)
    try:
        rows = {k: (rev, v) for k, rev, v in rw.scan("/registry/secrets/")}
        rw.replace([("/registry/secrets/ns/a", rows["/registry/secrets/ns/a"][0], b"old-a", b"new-a"),
                    ("/registry/secrets/ns/b", rows["/registry/secrets/ns/b"][0], b"old-b", b"new-b")])
        after = {k: v for k, _, v in rw.scan("/registry/secrets/")}
        assert after == {"/registry/secrets/ns/a": b"new-a", "/registry/secrets/ns/b": b"server-b"}
        assert {rev for _, rev, _ in rw.scan("/registry/secrets/")} == {rev for rev, _ in rows.values()}
        assert rw.prefixes() == ["/registry/secrets/"]
        hist = rw.history("/registry/secrets/")
        assert [(h[2], h[3]) for h in hist] == [(b"old-a", None), (b"old-b", None), (b"server-b", b"old-b")]
        rw.replace_history([(hist[2][0], b"server-b", b"old-b", b"server-b", b"new-b"),
                            (hist[0][0], b"stale", None, b"lost", None)])
        assert [(h[2], h[3]) for h in rw.history("/registry/secrets/")] == \
            [(b"old-a", None), (b"old-b", None), (b"server-b", b"new-b")]
    finally:
        rw.close()
