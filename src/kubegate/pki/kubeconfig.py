"""Kubeconfig files in the shape kubeadm writes (client-go's clientcmd.Write).

One cluster, one user with embedded client certificate and key, one context named
``<user>@<cluster>`` that is also the current context. Keys are emitted in the order
clientcmd produces (alphabetical) and base64 data is never line-wrapped.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from kubegate.pki.certs import PKIError, write_private_file


def build_kubeconfig(
    *,
    server: str,
    ca_pem: bytes,
    cluster: str,
    user: str,
    client_cert_pem: bytes,
    client_key_pem: bytes,
) -> dict[str, Any]:
    """The kubeconfig document as a dict (alphabetical keys, like clientcmd)."""
    context = f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": _b64(ca_pem),
                    "server": server,
                },
                "name": cluster,
            }
        ],
        "contexts": [{"context": {"cluster": cluster, "user": user}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client_cert_pem),
                    "client-key-data": _b64(client_key_pem),
                },
            }
        ],
    }


def dump_kubeconfig(config: dict[str, Any]) -> bytes:
    # width: base64 blobs must stay on one line, as Go's YAML writer leaves them.
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=2**31 - 1)
    return text.encode()


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    cluster: str,
    user: str,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    overwrite: bool = False,
) -> None:
    """Write a client-certificate kubeconfig at mode 0600 (FileExistsError unless `overwrite`)."""
    config = build_kubeconfig(
        server=server,
        ca_pem=ca_pem,
        cluster=cluster,
        user=user,
        client_cert_pem=client_cert_pem,
        client_key_pem=client_key_pem,
    )
    write_private_file(path, dump_kubeconfig(config), overwrite=overwrite)


def load_kubeconfig(path: Path) -> dict[str, Any]:
    """The parsed kubeconfig; PKIError if it cannot be read or is not a YAML mapping."""
    try:
        data = yaml.safe_load(path.read_bytes())
    except OSError as err:
        raise PKIError(f"failed to load kubeconfig file {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise PKIError(f"failed to load kubeconfig file {path}: {err}") from err
    if not isinstance(data, dict):
        raise PKIError(f"failed to load kubeconfig file {path}: not a kubeconfig document")
    return data


def _current(config: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The `kind` ("cluster" or "user") entry the current context points at, or None."""
    current = config.get("current-context")
    name = next(((c.get("context") or {}).get(kind) for c in config.get("contexts") or []
                 if isinstance(c, dict) and c.get("name") == current), None)
    for entry in config.get(kind + "s") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(kind)
            return value if isinstance(value, dict) else None
    return None


def current_cluster(config: dict[str, Any]) -> dict[str, Any] | None:
    return _current(config, "cluster")


def current_user(config: dict[str, Any]) -> dict[str, Any] | None:
    return _current(config, "user")


def embedded_pem(config: dict[str, Any], field: str) -> bytes | None:
    """Decode a `*-data` field of the current cluster (`certificate-authority-data`) or of the
    current context's user (`client-certificate-data`, `client-key-data`)."""
    if field == "certificate-authority-data":
        section = current_cluster(config)
    else:
        section = current_user(config)
    value = section.get(field) if section else None
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return None


def set_kubeconfig_server(path: Path, server: str) -> bool:
    """Point every cluster in the file at `server`; rewrite only if one differs.

    Returns whether the file was rewritten. Everything but `clusters[].cluster.server` is kept
    (YAML comments are not, as the file is re-serialised).
    """
    config = load_kubeconfig(path)
    changed = False
    for entry in config.get("clusters") or []:
        cluster = entry.get("cluster") if isinstance(entry, dict) else None
        if isinstance(cluster, dict) and cluster.get("server") != server:
            cluster["server"] = server
            changed = True
    if changed:
        write_private_file(path, dump_kubeconfig(config), overwrite=True)
    return changed


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
