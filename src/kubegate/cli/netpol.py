"""`kubegate netpol check|matrix`: ask the NetworkPolicy engine whether pods can reach each other.

Objects come from a live server (any Kubernetes API server, through a kubeconfig and the official
Python client) or, with --objects, from manifests on disk, so CI can ask before anything is applied.
Exit codes: 0 allowed (check) or done (matrix), 1 denied (check), 2 bad input or unreachable server.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from kubegate.netpol import manifests, render
from kubegate.netpol.engine import Engine
from kubegate.netpol.model import PROTOCOLS, EndpointRef, ModelError, Snapshot

_LISTS = (("Namespace", "/api/v1/namespaces"), ("Pod", "/api/v1/pods"),
          ("NetworkPolicy", "/apis/networking.k8s.io/v1/networkpolicies"))


class CLIError(Exception):
    pass


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a port number, got {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, inclusive, got {port}")
    return port


def _live(kubeconfig: str | None, namespaces: list[str] | None) -> Snapshot:
    """Namespaces, pods and policies read from the server; only `namespaces` when given."""
    from kubernetes import config
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        api = config.new_client_from_config(config_file=kubeconfig)
    except (config.ConfigException, OSError, TypeError, ValueError) as e:
        raise CLIError(f"cannot load kubeconfig: {e}") from None

    def get(path: str) -> dict[str, Any] | None:
        try:
            method, url, headers, body, post = api.param_serialize(
                "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
            resp = api.call_api(method, url, header_params=headers, body=body, post_params=post,
                                _request_timeout=30)
            resp.read()
        except ApiException as e:
            raise CLIError(f"{e.reason} ({e.status})") from None
        except HTTPError as e:
            raise CLIError(f"cannot reach the server: {e}") from None
        if resp.status == 404:
            return None
        try:
            doc: dict[str, Any] = json.loads(resp.data)
        except ValueError:
            raise CLIError(f"the server answered {resp.status} with a body that is not JSON") from None
        if resp.status >= 300:
            raise CLIError(f"{doc.get('message') or resp.reason} ({resp.status})")
        return doc

    snap = Snapshot()
    try:
        if namespaces is None:
            for kind, path in _LISTS:
                for item in (get(path) or {}).get("items") or []:
                    snap.add(dict(item, kind=kind))
            return snap
        for ns in namespaces:
            obj = get(f"/api/v1/namespaces/{ns}")
            if obj is None:
                continue  # resolving a pod there says the namespace does not exist
            snap.add(obj)
            for kind, path in _LISTS[1:]:
                group_path, _, plural = path.rpartition("/")
                for item in (get(f"{group_path}/namespaces/{ns}/{plural}") or {}).get("items") or []:
                    snap.add(dict(item, kind=kind))
    finally:
        api.close()
    return snap


def _snapshot(a: argparse.Namespace, namespaces: list[str] | None) -> Snapshot:
    if a.objects:
        try:
            return manifests.load(a.objects)
        except manifests.ManifestError as e:
            raise CLIError(str(e)) from None
    return _live(a.kubeconfig, namespaces)


def _ref(value: str, flag: str) -> EndpointRef:
    try:
        return EndpointRef.parse(value)
    except ModelError as e:
        raise CLIError(f"{flag}: {e}") from None


def cmd_check(a: argparse.Namespace) -> int:
    src, dst = _ref(a.src, "--from"), _ref(a.dst, "--to")
    snap = _snapshot(a, sorted({r.namespace for r in (src, dst) if r.ip is None}))
    ends = []
    for flag, ref in (("--from", src), ("--to", dst)):
        try:
            ends.append(snap.resolve(ref))
        except ModelError as e:
            raise CLIError(f"{flag} {ref}: {e}") from None
    verdict = Engine(snap).evaluate(ends[0], ends[1], a.port, a.protocol)
    if a.output == "json":
        print(json.dumps(verdict.to_json(), indent=2))
    else:
        print("\n".join(verdict.explain()))
    return 0 if verdict.allowed else 1


def cmd_matrix(a: argparse.Namespace) -> int:
    wanted = sorted({n for arg in a.namespace for n in arg.split(",") if n}) or None
    snap = _snapshot(a, wanted)
    for ns in wanted or ():
        if not snap.known_namespace(ns):
            raise CLIError(f'namespace "{ns}" not found')
    pods = [p for p in snap.pods.values() if wanted is None or p.namespace in wanted]
    m = Engine(snap).matrix(pods, a.port, a.protocol)
    if a.output == "json":
        print(json.dumps(m.to_json()))
    elif a.output == "svg":
        sys.stdout.write(render.svg(m))
    elif a.output == "png":
        try:
            data = render.png(m)
        except render.RenderError as e:
            raise CLIError(str(e)) from None
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        print(m.table(), end="")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=_port, required=True, help="destination port number")
    p.add_argument("--protocol", choices=PROTOCOLS, default="TCP", help="protocol (default TCP)")
    p.add_argument("--objects", nargs="+", action="extend", metavar="DIR|FILE",
                   help="evaluate these YAML/JSON manifests offline instead of asking a server")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig to use (default $KUBECONFIG, then ~/.kube/config)")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("netpol", help="evaluate NetworkPolicies: which pods may connect to which")
    nsub = p.add_subparsers(dest="netpol_command", required=True)
    c = nsub.add_parser("check", help="is one connection allowed? with the policies and rules that decide")
    c.add_argument("--from", dest="src", required=True, metavar="NS/POD|IP", help="the source")
    c.add_argument("--to", dest="dst", required=True, metavar="NS/POD|IP", help="the destination")
    _common(c)
    c.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
    c.set_defaults(func=lambda a: run(cmd_check, a))
    m = nsub.add_parser("matrix", help="the truth table of every ordered pair of pods")
    m.add_argument("-n", "--namespace", action="append", default=[],
                   help="only pods of this namespace (repeatable, or comma-separated; default: all)")
    _common(m)
    m.add_argument("-o", "--output", choices=("table", "json", "svg", "png"), default="table",
                   help="table (cyclonus's grids), json, svg or png (the graph of allowed flows)")
    m.set_defaults(func=lambda a: run(cmd_matrix, a))


def run(func: Callable[[argparse.Namespace], int], a: argparse.Namespace) -> int:
    try:
        return func(a)
    except (CLIError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
