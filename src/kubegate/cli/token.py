"""`kubegate token create`: a bootstrap token as `kubeadm token create` makes it (a Secret
kube-system/bootstrap-token-<id> of type bootstrap.kubernetes.io/token), printed as ID.SECRET."""
from __future__ import annotations

import argparse
import base64
import datetime
import secrets
import sys
from pathlib import Path
from typing import Any

from kubegate.api.objects import rfc3339
from kubegate.authn import bootstrap_token as bt
from kubegate.protobuf.codec import ProtobufError, parse_duration

KNOWN_USAGES = ("signing", "authentication")
DEFAULT_GROUP = "system:bootstrappers:kubeadm:default-node-token"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN_PATTERN = r"\A([a-z0-9]{6})\.([a-z0-9]{16})\z"


class TokenError(Exception):
    pass


def generate() -> str:
    """bootstraputil.GenerateBootstrapToken: 6 + 16 characters of [a-z0-9] from the system CSPRNG."""
    def part(n: int) -> str:
        return "".join(secrets.choice(_ALPHABET) for _ in range(n))
    return f"{part(6)}.{part(16)}"


def secret_for(token: str, ttl_seconds: float, usages: list[str], groups: list[str], description: str,
               now: datetime.datetime) -> dict[str, Any]:
    """kubeadm's BootstrapTokenToSecret, validated as kubeadm validates the flags."""
    parsed = bt.parse_token(token)
    if parsed is None:
        raise TokenError(f'the bootstrap token "{token}" was not of the form "{_TOKEN_PATTERN}"')
    for u in usages:
        if u not in KNOWN_USAGES:
            raise TokenError(f"invalid bootstrap token usage string: {u}, valid usage options: "
                             f"{','.join(KNOWN_USAGES)}")
    for g in groups:
        if not bt.is_valid_group(g):
            raise TokenError(f"bootstrap group {g!r} is invalid (must match "
                             r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z)")
    if groups and "authentication" not in usages:
        raise TokenError('--groups cannot be specified unless --usages includes "authentication"')
    token_id, token_secret = parsed
    data = {bt.ID_KEY: token_id, bt.SECRET_KEY: token_secret}
    if description:
        data["description"] = description
    if ttl_seconds > 0:
        expires = now + datetime.timedelta(seconds=ttl_seconds)
        data[bt.EXPIRATION_KEY] = rfc3339(expires)
    for u in usages:
        data[f"usage-bootstrap-{u}"] = "true"
    if groups:
        data[bt.EXTRA_GROUPS_KEY] = ",".join(groups)
    return {"apiVersion": "v1", "kind": "Secret", "type": bt.SECRET_TYPE,
            "metadata": {"name": bt.SECRET_PREFIX + token_id, "namespace": bt.NAMESPACE},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def cmd_create(a: argparse.Namespace) -> int:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        ttl = parse_duration(a.ttl) / 1e9
        secret = secret_for(a.token or generate(), ttl, [u for u in a.usages.split(",") if u],
                            [g for g in a.groups.split(",") if g], a.description,
                            datetime.datetime.now(datetime.timezone.utc))
    except ProtobufError as e:
        return _fail(f"invalid --ttl {a.ttl!r}: {e}")
    except TokenError as e:
        return _fail(str(e))
    if not a.kubeconfig and not a.data_dir:
        return _fail("one of --kubeconfig or --data-dir is required")
    kubeconfig = a.kubeconfig or str(Path(a.data_dir) / "admin.conf")
    try:
        api = config.new_client_from_config(config_file=kubeconfig)
        client.CoreV1Api(api).create_namespaced_secret(bt.NAMESPACE, secret)
    except (config.ConfigException, OSError, TypeError, ValueError) as e:
        return _fail(f"cannot load kubeconfig {kubeconfig}: {e}")
    except ApiException as e:
        if e.status == 409:
            token_id = base64.b64decode(secret["data"][bt.ID_KEY]).decode()
            return _fail(f'a token with id "{token_id}" already exists')
        return _fail(f"failed to create bootstrap token: {e.reason} ({e.status})")
    except HTTPError as e:
        return _fail(f"cannot reach the server: {e}")
    token = f"{base64.b64decode(secret['data'][bt.ID_KEY]).decode()}." \
            f"{base64.b64decode(secret['data'][bt.SECRET_KEY]).decode()}"
    print(token)
    return 0


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def add_commands(sub: Any) -> None:
    p = sub.add_parser("token", help="manage bootstrap tokens (as kubeadm token)")
    tokens = p.add_subparsers(dest="token_command", required=True)
    q = tokens.add_parser("create", help="create a bootstrap token and print it as ID.SECRET")
    q.add_argument("token", nargs="?", default="", help="the token to create (default: a random one)")
    q.add_argument("--data-dir", type=Path, default=None, help="the data directory (its admin.conf is used)")
    q.add_argument("--kubeconfig", help="credentials for the server (default DIR/admin.conf)")
    q.add_argument("--ttl", default="24h0m0s", help="how long the token is valid; 0 = never expires")
    q.add_argument("--usages", default="signing,authentication",
                   help=f"how the token may be used, comma-separated: {','.join(KNOWN_USAGES)}")
    q.add_argument("--groups", default=DEFAULT_GROUP,
                   help="extra groups the token authenticates as, comma-separated (system:bootstrappers:...)")
    q.add_argument("--description", default="", help="a human-readable note on what the token is for")
    q.set_defaults(func=cmd_create)
