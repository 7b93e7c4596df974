"""Value transformers between the registry and the backend, after upstream's storage/value.

A provider transforms one value; a PrefixTransformers picks, on read, the first entry whose prefix the
stored bytes start with (upstream NewPrefixTransformers) and writes with its first entry. Nesting one
inside another gives upstream's stored layout `k8s:enc:<provider>:v1:<key>:<ciphertext>`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

ENCRYPTED_PREFIX = b"k8s:enc:"


class TransformFailure(Exception):
    """A value could not be turned back into plaintext; the message is upstream's."""


class Transformer(Protocol):
    def to_storage(self, data: bytes, ctx: bytes) -> bytes: ...

    def from_storage(self, data: bytes, ctx: bytes) -> tuple[bytes, bool]:
        """Returns (plaintext, stale): stale means the value was not written by the current writer."""
        ...


@dataclass(frozen=True)
class PrefixTransformer:
    prefix: bytes
    transformer: Transformer


class PrefixTransformers:
    def __init__(self, no_match: str, entries: Sequence[PrefixTransformer]) -> None:
        self._no_match = no_match
        self._entries = tuple(entries)

    @property
    def write_prefix(self) -> bytes:
        """The full prefix new values get (b"" when the writer is identity)."""
        first = self._entries[0]
        inner = first.transformer
        return first.prefix + (inner.write_prefix if isinstance(inner, PrefixTransformers) else b"")

    def to_storage(self, data: bytes, ctx: bytes) -> bytes:
        first = self._entries[0]
        return first.prefix + first.transformer.to_storage(data, ctx)

    def from_storage(self, data: bytes, ctx: bytes) -> tuple[bytes, bool]:
        errors: list[str] = []
        for i, e in enumerate(self._entries):
            if not data.startswith(e.prefix):
                continue
            try:
                out, stale = e.transformer.from_storage(data[len(e.prefix):], ctx)
            except TransformFailure as err:
                # a later entry with the same prefix (two aescbc providers) may hold the key; identity's
                # refusal of encrypted bytes is not worth reporting
                if e.prefix:
                    errors.append(str(err))
                continue
            return out, stale or i != 0
        if errors:
            raise TransformFailure(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
        raise TransformFailure(self._no_match)


GroupResource = tuple[str, str]  # (group, resource); "" is the core group


def group_resource(text: str) -> GroupResource:
    """schema.ParseGroupResource: `secrets` -> ("", "secrets"), `deployments.apps` -> ("apps", ...),
    `*.` -> ("", "*"), `*.*` -> ("*", "*")."""
    resource, _, group = text.partition(".")
    return group, resource


def gr_string(gr: GroupResource) -> str:
    """upstream grYAMLString: the core group's wildcard is written `*.`."""
    group, resource = gr
    if not group and resource == "*":
        return "*."
    return f"{resource}.{group}" if group else resource


class TransformerSet:
    """The transformer for each group resource: exact entry, then `*.<group>`, then `*.*`, else
    identity (upstream transformerFromOverrides)."""

    def __init__(self, by_resource: Mapping[GroupResource, PrefixTransformers], default: Transformer,
                 kms: Sequence[Any] = ()) -> None:
        self._by_resource = dict(by_resource)
        self._default = default
        self.kms = tuple(kms)  # the KMS providers (kmsv2.KMSv2Provider), for health, probing and DEK loading

    def for_resource(self, gr: GroupResource) -> Transformer:
        found = (self._by_resource.get(gr) or self._by_resource.get((gr[0], "*"))
                 or self._by_resource.get(("*", "*")))
        return found if found is not None else self._default
