"""Key rotation planned without I/O: which config entries rotate, which stored objects each one
covers, whether a stored value is already the writer's, the two configs a rotation moves through,
and the resumable state machine between them.

A rotation of entry i goes A (the file as found) -> B (a new key added as the writer, every old key
still readable) -> every covered object re-encrypted and verified -> C (the old writer's keys
retired). Every object stays readable under the config the server has at each point: under B all
keys read, and C is written only after no covered object is left on an old key.
"""
from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .transformer import ENCRYPTED_PREFIX, GroupResource, group_resource

KEYED = ("aescbc", "aesgcm", "secretbox")
PROVIDERS = (*KEYED, "identity", "kms")

# phases, each persisted before the step that follows it
PLANNED = "planned"      # state written; the config file is still A
WRITER = "writer"        # the file is B: new key writes; re-encryption runs or may resume
VERIFIED = "verified"    # no covered object is left on an old key; C may replace B


class RotationError(Exception):
    pass


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def provider_type(provider: Mapping[str, Any]) -> str:
    return next((p for p in PROVIDERS if provider.get(p) is not None), "")


def key_label(value: bytes) -> str:
    """`<provider>:<key name>` for an encrypted stored value (`kms:<provider name>` for KMS v2),
    `identity` for plaintext."""
    if not value.startswith(ENCRYPTED_PREFIX):
        return "identity"
    parts = value[len(ENCRYPTED_PREFIX):].split(b":", 3)
    if len(parts) < 4 or (parts[0], parts[1]) not in {(p.encode(), b"v1") for p in KEYED} | {(b"kms", b"v2")}:
        return "unknown"
    return f"{parts[0].decode()}:{parts[2].decode(errors='replace')}"


def writer_label(write_prefix: bytes) -> str:
    return key_label(write_prefix + b"x") if write_prefix else "identity"


def written_by(value: bytes, write_prefix: bytes) -> bool:
    """Whether a stored value was written by the writer whose prefix is `write_prefix` (b"" for identity)."""
    if write_prefix:
        return value.startswith(write_prefix)
    return not value.startswith(ENCRYPTED_PREFIX)


def entry_index(entries: list[list[str]], gr: GroupResource) -> int | None:
    """The config entry whose first provider writes `gr` (upstream's lookup: the exact resource,
    then `*.<group>`, then `*.*`; the first entry listing it wins, as its providers come first)."""
    for candidate in (gr, (gr[0], "*"), ("*", "*")):
        for i, resources in enumerate(entries):
            if candidate in (group_resource(r) for r in resources):
                return i
    return None


def resource_entries(raw: Mapping[str, Any]) -> list[list[str]]:
    return [[str(r) for r in (rc.get("resources") or [])] for rc in raw.get("resources") or []]


def select_entries(raw: Mapping[str, Any], wanted: Iterable[str]) -> list[int]:
    """Entries to rotate: those writing any of `wanted` (`secrets`, `deployments.apps`); with none
    given, every entry whose writer encrypts (rotating a plaintext entry must be asked for)."""
    entries = resource_entries(raw)
    wanted = list(wanted)
    if not wanted:
        return [i for i, rc in enumerate(raw.get("resources") or [])
                if provider_type((rc.get("providers") or [{}])[0]) in KEYED]
    chosen: set[int] = set()
    for res in wanted:
        i = entry_index(entries, group_resource(res))
        if i is None:
            raise RotationError(f'resource "{res}" is not listed in the encryption configuration')
        chosen.add(i)
    return sorted(chosen)


def covered(entries: list[list[str]], selected: Iterable[int],
            stored: Iterable[tuple[str, GroupResource]]) -> list[tuple[str, GroupResource]]:
    """The (storage prefix, group resource) pairs whose objects a rotation of `selected` rewrites."""
    chosen = set(selected)
    return [(prefix, gr) for prefix, gr in stored if entry_index(entries, gr) in chosen]


def rotation_configs(raw: Mapping[str, Any], selected: Iterable[int], key_name: str,
                     secrets: Mapping[int, str], new_type: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(B, C) for rotating `selected` entries to a new key `key_name` (base64 `secrets[i]` per entry).
    The new key joins the writer provider when it has the same type (else a new provider goes first;
    a plaintext entry gets `aescbc` unless told). C drops exactly the old writer's keys."""
    with_new, retired = copy.deepcopy(dict(raw)), copy.deepcopy(dict(raw))
    for i in selected:
        providers = list(raw["resources"][i].get("providers") or [])
        if not providers:
            raise RotationError(f"resources[{i}] has no providers")
        old = providers[0]
        old_type = provider_type(old)
        if old_type == "kms":
            raise RotationError(f"resources[{i}]: a kms writer rotates its keys in the KMS, not here")
        kind = new_type or (old_type if old_type in KEYED else "aescbc")
        new_key = {"name": key_name, "secret": secrets[i]}
        if kind == old_type:
            old_keys = list((old[old_type] or {}).get("keys") or [])
            if any(k.get("name") == key_name for k in old_keys):
                raise RotationError(f'resources[{i}]: a key named "{key_name}" already exists')
            b = [{kind: {"keys": [new_key, *old_keys]}}, *providers[1:]]
            c = [{kind: {"keys": [new_key]}}, *providers[1:]]
        else:
            b = [{kind: {"keys": [new_key]}}, *providers]
            c = [{kind: {"keys": [new_key]}}, *providers[1:]]
        with_new["resources"][i]["providers"] = copy.deepcopy(b)
        retired["resources"][i]["providers"] = copy.deepcopy(c)
    return with_new, retired


def dump_config(raw: Mapping[str, Any]) -> bytes:
    return yaml.safe_dump(dict(raw), sort_keys=False, default_flow_style=False).encode()


@dataclass
class RotationState:
    """What `rotate` persists (mode 0600: it holds the new key) so any later run can finish it."""
    phase: str
    key_name: str
    entries: list[int]
    original: str       # A, B and C as file text: hashes identify which one is on disk
    with_new: str
    retired: str

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "keyName": self.key_name, "entries": self.entries,
                "original": self.original, "withNewKey": self.with_new, "retired": self.retired}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RotationState:
        try:
            return cls(str(d["phase"]), str(d["keyName"]), [int(i) for i in d["entries"]], str(d["original"]),
                       str(d["withNewKey"]), str(d["retired"]))
        except (KeyError, TypeError, ValueError) as e:
            raise RotationError(f"rotation state is damaged: {e}") from None


# next actions for a persisted state and the config file on disk
WRITE_WITH_NEW = "write-with-new-key"
REENCRYPT = "reencrypt"
WRITE_RETIRED = "write-retired"
FINISH = "finish"


def next_action(state: RotationState, on_disk: bytes) -> str:
    """The step that resumes `state` with `on_disk` as the config file; a file
    that is none of the configs this rotation writes means someone else changed it: stop."""
    h = file_hash(on_disk)
    a, b, c = (file_hash(t.encode()) for t in (state.original, state.with_new, state.retired))
    if state.phase == PLANNED and h == a:
        return WRITE_WITH_NEW
    if state.phase in (PLANNED, WRITER) and h == b:
        return REENCRYPT
    if state.phase == VERIFIED and h == b:
        return WRITE_RETIRED
    if state.phase == VERIFIED and h == c:
        return FINISH
    raise RotationError(f"the encryption configuration changed outside this rotation (phase {state.phase}); "
                        "restore it or remove the rotation state to start over")
