"""`kubegate who-can`, `kubegate explain-access`, `kubegate rolesum`: ask a running server (through
kubegate.dev/v1alpha1, see kubegate.server.explain_api) with the credentials of a kubeconfig."""
from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from typing import Any, Callable

from kubegate.authz import explain
from kubegate.server.explain_api import GROUP, VERSION
from kubegate.webhook.client import WebhookConfigError, WebhookError, load_webhook_kubeconfig


def _kubeconfig(a: argparse.Namespace) -> str:
    path = a.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] \
        or os.path.expanduser("~/.kube/config")
    return str(path)


def _ask(a: argparse.Namespace, plural: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    # The kubeconfig client of the webhook plugins speaks to any API server the same way.
    client = load_webhook_kubeconfig(_kubeconfig(a))
    client.url = f"{client.url.rstrip('/')}/apis/{GROUP}/{VERSION}/{plural}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "spec": spec}

    async def post() -> dict[str, Any]:
        try:
            return await client.post(body)
        finally:
            await client.close()
    status: dict[str, Any] = asyncio.run(post())["status"]
    return status


def _resource_spec(a: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {"verb": a.verb}
    if a.resource.startswith("/"):
        spec["nonResourceURL"] = a.resource
        return spec
    spec["resource"] = a.resource
    for key, value in (("namespace", a.namespace), ("name", a.name), ("subresource", a.subresource)):
        if value:
            spec[key] = value
    return spec


def _print(a: argparse.Namespace, doc: dict[str, Any], text: str) -> None:
    print(json.dumps(doc, indent=2) if a.output == "json" else text)


def cmd_who_can(a: argparse.Namespace) -> int:
    spec = _resource_spec(a)
    if a.all_namespaces:
        spec["allNamespaces"] = True
    doc = _ask(a, "whocanreviews", "WhoCanReview", spec)
    _print(a, doc, explain.format_who_can(doc))
    return 0


def cmd_explain_access(a: argparse.Namespace) -> int:
    spec = _resource_spec(a)
    if a.as_user:
        spec["user"] = a.as_user
    if a.as_group:
        spec["groups"] = a.as_group
    doc = _ask(a, "accessexplanations", "AccessExplanation", spec)
    _print(a, doc, explain.format_explanation(doc))
    return 0 if doc["allowed"] else 1


def cmd_rolesum(a: argparse.Namespace) -> int:
    kind = a.kind or ("ServiceAccount" if a.subject.startswith("system:serviceaccount:") else "User")
    spec: dict[str, Any] = {"kind": kind, "name": a.subject}
    if a.as_group:
        spec["groups"] = a.as_group
    doc = _ask(a, "rolesummaries", "RoleSummary", spec)
    _print(a, doc, explain.format_rolesum(doc))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", default=None, help="kubeconfig to use (default $KUBECONFIG, then ~/.kube/config)")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def _request(p: argparse.ArgumentParser) -> None:
    p.add_argument("verb", help="e.g. get, list, create, escalate, bind, impersonate")
    p.add_argument("resource", help="pods, deployments.apps, deploy, pods/log, or a non-resource URL like /healthz")
    p.add_argument("-n", "--namespace", default="", help="namespace of the request (default: cluster scope)")
    p.add_argument("--name", default="", help="the object's name (resourceNames)")
    p.add_argument("--subresource", default="", help="e.g. log, status, scale")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("who-can", help="list every user, group and service account allowed a request, "
                                       "with the binding and rule that grant it")
    _request(p)
    p.add_argument("-A", "--all-namespaces", action="store_true", help="count RoleBindings of every namespace")
    _common(p)
    p.set_defaults(func=functools.partial(run, cmd_who_can))
    p = sub.add_parser("explain-access", help="say whether a user may make a request, which authorizer "
                                              "decided and why; for a denial, the nearest rules")
    _request(p)
    p.add_argument("--as", dest="as_user", default="", help="the user to explain for (default: yourself)")
    p.add_argument("--as-group", action="append", default=[], help="a group of that user (repeatable)")
    _common(p)
    p.set_defaults(func=functools.partial(run, cmd_explain_access))
    p = sub.add_parser("rolesum", help="every permission a subject holds, per namespace, as a table")
    p.add_argument("subject", help="user name, group name, or system:serviceaccount:NS:NAME (or NS/NAME with -k)")
    p.add_argument("-k", "--kind", choices=("User", "Group", "ServiceAccount"), default=None,
                   help="subject kind (default: ServiceAccount for system:serviceaccount:..., else User)")
    p.add_argument("--as-group", action="append", default=[], help="groups the user is in, besides "
                                                                    "system:authenticated (repeatable)")
    _common(p)
    p.set_defaults(func=functools.partial(run, cmd_rolesum))


def run(func: Callable[[argparse.Namespace], int], a: argparse.Namespace) -> int:
    """Run a command, turning the server's or the kubeconfig's errors into one line on stderr."""
    try:
        return func(a)
    except (WebhookError, WebhookConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
