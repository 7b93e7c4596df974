"""ServiceAccount admission (plugin/pkg/admission/serviceaccount): a new pod runs as a service
account that exists (`default` unless it names one), gets that account's API credentials as the
projected `kube-api-access-*` volume unless the pod or the account turns automounting off, and
inherits the account's imagePullSecrets; mirror pods may reference none of it; accounts annotated
kubernetes.io/enforce-mountable-secrets limit the secrets their pods may use."""
from __future__ import annotations

import asyncio
import random
from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, PODS, AdmissionRequest
from kubegate.admission.refusals import forbidden
from kubegate.api import podrefs
from kubegate.api.objects import generate_name
from kubegate.api.registry import ResourceRegistry

DEFAULT_NAME = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ENFORCE_MOUNTABLE_SECRETS = "kubernetes.io/enforce-mountable-secrets"
# serviceaccount.WarnOnlyBoundTokenExpirationSeconds: one hour and seven seconds, so the token
# authenticator can tell admission-injected tokens (and extend them) from requested ones.
TOKEN_EXPIRATION_SECONDS = 3607


def api_access_volume(name: str) -> dict[str, Any]:
    return {"name": name, "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
        "defaultMode": 420}}


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def should_automount(sa: dict[str, Any], pod: dict[str, Any]) -> bool:
    """The pod's choice, else the account's, else true."""
    pod_choice = _d(pod.get("spec")).get("automountServiceAccountToken")
    if pod_choice is not None:
        return bool(pod_choice)
    sa_choice = sa.get("automountServiceAccountToken")
    return True if sa_choice is None else bool(sa_choice)


def mount_token(spec: dict[str, Any]) -> None:
    """Every (init) container without something at the token path mounts the kube-api-access
    volume, which is added when some container needed it (an existing one is reused)."""
    existing = ""
    for v in spec.get("volumes") or ():
        if isinstance(v, dict) and str(v.get("name") or "").startswith(VOLUME_PREFIX):
            existing = str(v["name"])
            break
    name = ""
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or ():
            if not isinstance(c, dict):
                continue
            mounts = c.get("volumeMounts") or []
            if any(_d(m).get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            name = name or existing or generate_name(VOLUME_PREFIX)
            c["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}]
    if name and not existing:
        spec["volumes"] = [*(spec.get("volumes") or ()), api_access_volume(name)]


def secret_reference_error(sa: dict[str, Any], pod: dict[str, Any]) -> str | None:
    """limitSecretReferences: what the pod uses that the account does not list."""
    spec = _d(pod.get("spec"))
    sa_name = _d(sa.get("metadata")).get("name", "")
    mountable = {_d(s).get("name") for s in sa.get("secrets") or []}
    for v in spec.get("volumes") or []:
        secret = _d(v).get("secret")
        if isinstance(secret, dict) and secret.get("secretName") not in mountable:
            return (f'volume with secret.secretName="{secret.get("secretName", "")}" is not allowed because service '
                    f"account {sa_name} does not reference that secret")
    for key, what in (("initContainers", "init container"), ("containers", "container")):
        for c in spec.get(key) or []:
            c = _d(c)
            for env in c.get("env") or []:
                ref = _d(_d(_d(env).get("valueFrom")).get("secretKeyRef"))
                if ref and ref.get("name") not in mountable:
                    return (f'{what} {c.get("name", "")} with envVar {_d(env).get("name", "")} referencing '
                            f'secret.secretName="{ref.get("name", "")}" is not allowed because service account '
                            f"{sa_name} does not reference that secret")
            for env_from in c.get("envFrom") or []:
                ref = _d(_d(env_from).get("secretRef"))
                if ref and ref.get("name") not in mountable:
                    return (f'{what} {c.get("name", "")} with envFrom referencing secret.secretName='
                            f'"{ref.get("name", "")}" is not allowed because service account {sa_name} does not '
                            "reference that secret")
    pull = {_d(s).get("name") for s in sa.get("imagePullSecrets") or []}
    for i, ref in enumerate(spec.get("imagePullSecrets") or []):
        if _d(ref).get("name") not in pull:
            return (f'imagePullSecrets[{i}].name="{_d(ref).get("name", "")}" is not allowed because service account '
                    f"{sa_name} does not reference that imagePullSecret")
    return None


def _mirror_pod_error(pod: dict[str, Any]) -> str | None:
    spec = _d(pod.get("spec"))
    if spec.get("serviceAccountName"):
        return "a mirror pod may not reference service accounts"
    if podrefs.pod_secret_names(pod):
        return "a mirror pod may not reference secrets"
    for v in spec.get("volumes") or []:
        if any("serviceAccountToken" in _d(s) for s in _d(_d(v).get("projected")).get("sources") or []):
            return "a mirror pod may not use ServiceAccountToken volume projections"
    return None


class ServiceAccount:
    name = "ServiceAccount"
    resources = PODS

    def __init__(self, accounts: ResourceRegistry, mount_tokens: bool = True) -> None:
        self.accounts = accounts
        self.mount_tokens = mount_tokens

    async def _account(self, req: AdmissionRequest, name: str) -> dict[str, Any]:
        """The account from the cache; the default one is waited for a little, since its
        controller creates it just after the namespace."""
        attempts = 10 if name == DEFAULT_NAME else 1
        for i in range(attempts):
            if i:
                await asyncio.sleep((100 + random.randrange(100)) / 1000)
            found = self.accounts.get_cached(req.namespace, name)
            if found is not None:
                return found.obj
        raise forbidden(req, f"error looking up service account {req.namespace}/{name}: "
                             f'serviceaccount "{name}" not found')

    @staticmethod
    def _applies(req: AdmissionRequest) -> bool:
        r = req.resource
        return (r.group, r.plural) == ("", "pods") and req.subresource == "" and isinstance(req.obj, dict) \
            and req.operation == CREATE

    async def admit(self, req: AdmissionRequest) -> None:
        if not self._applies(req):
            return
        pod = req.obj
        assert pod is not None
        if podrefs.is_mirror_pod(pod):
            return  # the kubelet would delete a mirror pod whose spec changed; validate() refuses instead
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            spec = pod["spec"] = {}
        # v1's deprecated serviceAccount field converts into serviceAccountName.
        name = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_NAME)
        spec["serviceAccountName"] = name
        spec["serviceAccount"] = name
        sa = await self._account(req, name)
        if self.mount_tokens and should_automount(sa, pod):
            mount_token(spec)
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": _d(s).get("name", "")} for s in sa["imagePullSecrets"]]

    async def validate(self, req: AdmissionRequest) -> None:
        if not self._applies(req):
            return
        pod = req.obj
        assert pod is not None
        if podrefs.is_mirror_pod(pod):
            err = _mirror_pod_error(pod)
            if err:
                raise forbidden(req, err)
            return
        spec = _d(pod.get("spec"))
        name = str(spec.get("serviceAccountName") or "")
        if not name:
            meta_name = _d(pod.get("metadata")).get("name", "")
            raise forbidden(req, f"no service account specified for pod {req.namespace}/{meta_name}")
        sa = await self._account(req, name)
        enforce = str(_d(_d(sa.get("metadata")).get("annotations")).get(ENFORCE_MOUNTABLE_SECRETS, "")).lower()
        if enforce in ("1", "t", "true"):
            err = secret_reference_error(sa, pod)
            if err:
                raise forbidden(req, err)


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> ServiceAccount:
    return ServiceAccount(deps.by_plural["serviceaccounts"])
