"""ImagePolicyWebhook (plugin/pkg/admission/imagepolicy): a pod's images are sent as an ImageReview
to a remote service (kubeconfig from the `imagePolicy` configuration) that allows or denies them;
answers are cached (allowTTL/denyTTL), and defaultAllow decides when the service fails."""
from __future__ import annotations

import time
from typing import Any

import orjson

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest
from kubegate.admission.refusals import forbidden
from kubegate.webhook.client import Backoff, WebhookClient, WebhookError, load_webhook_kubeconfig

AUDIT_PREFIX = "imagepolicywebhook.image-policy.k8s.io/"
FAILED_OPEN_ANNOTATION = "alpha.image-policy.k8s.io/failed-open"

# (name, unit in seconds, min, max, default) for each duration of the configuration.
_DURATIONS = {"retryBackoff": ("backoff", 0.001, 0.001, 300.0, 0.5),
              "allowTTL": ("allow cache", 1.0, 1.0, 1800.0, 300.0),
              "denyTTL": ("deny cache", 1.0, 1.0, 1800.0, 30.0)}


def _go_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}m{secs:g}s" if minutes else f"{secs:g}s"


def parse_configuration(conf: dict[str, Any] | None) -> tuple[str, dict[str, float], bool]:
    """(kubeconfig path, normalized durations in seconds, defaultAllow); ValueError as upstream."""
    policy = (conf or {}).get("imagePolicy")
    if not isinstance(policy, dict):
        raise ValueError("no config specified")
    out: dict[str, float] = {}
    for key, (name, unit, low, high, default) in _DURATIONS.items():
        raw = policy.get(key, 0)
        if not isinstance(raw, (int, float)) or isinstance(raw, bool):
            raise ValueError(f"{key}: must be a number")
        if raw == -1:  # disabled
            out[key] = 0.0
        elif raw == 0:
            out[key] = default
        else:
            value = raw * unit
            if not low <= value <= high:
                raise ValueError(f"valid value is between {_go_duration(low)} and {_go_duration(high)}, got "
                                 f"{_go_duration(value)} for {name}")
            out[key] = value
    kubeconfig = policy.get("kubeConfigFile")
    if not kubeconfig:
        raise ValueError("kubeConfigFile: Required value")
    return str(kubeconfig), out, policy.get("defaultAllow") is True


class ImagePolicyWebhook:
    name = "ImagePolicyWebhook"

    def __init__(self, client: WebhookClient, allow_ttl: float, deny_ttl: float, default_allow: bool,
                 clock: Any = time.monotonic) -> None:
        self.client = client
        self.allow_ttl, self.deny_ttl = allow_ttl, deny_ttl
        self.default_allow = default_allow
        self.clock = clock
        self.cache: dict[bytes, tuple[float, dict[str, Any]]] = {}

    async def validate(self, req: AdmissionRequest) -> None:
        r = req.resource
        if req.operation not in (CREATE, UPDATE) or (r.group, r.plural) != ("", "pods") or \
                req.subresource not in ("", "ephemeralcontainers") or not isinstance(req.obj, dict):
            return
        pod = req.obj
        spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
        keys = ("containers", "initContainers") if req.subresource == "" else ("ephemeralContainers",)
        containers = [{"image": str((c or {}).get("image") or "")} for k in keys for c in spec.get(k) or []]
        annotations = {k: v for k, v in ((pod.get("metadata") or {}).get("annotations") or {}).items()
                       if ".image-policy.k8s.io/" in k}
        review_spec: dict[str, Any] = {"containers": containers}
        if annotations:
            review_spec["annotations"] = annotations
        if req.namespace:
            review_spec["namespace"] = req.namespace
        status = await self._review(req, pod, review_spec)
        if status is None:
            return
        for k, v in (status.get("auditAnnotations") or {}).items():
            req.annotations[AUDIT_PREFIX + k] = str(v)
        if status.get("allowed") is not True:
            if status.get("reason"):
                raise forbidden(req, f"image policy webhook backend denied one or more images: {status['reason']}")
            raise forbidden(req, "one or more images rejected by webhook backend")

    async def _review(self, req: AdmissionRequest, pod: dict[str, Any],
                      spec: dict[str, Any]) -> dict[str, Any] | None:
        """The review's status (cached), or None when the service failed and defaultAllow admits."""
        key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
        now = self.clock()
        hit = self.cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        body = {"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": {"allowed": False}}
        try:
            answer = await self.client.post(body)
        except WebhookError as e:
            if self.default_allow:
                req.annotations[AUDIT_PREFIX + "failed-open"] = "true"
                meta = pod.setdefault("metadata", {})
                meta["annotations"] = {**(meta.get("annotations") or {}), FAILED_OPEN_ANNOTATION: "true"}
                return None
            raise forbidden(req, str(e)) from None
        status = answer.get("status") if isinstance(answer.get("status"), dict) else {}
        ttl = self.allow_ttl if status.get("allowed") is True else self.deny_ttl
        if ttl:
            self.cache[key] = (now + ttl, status)
        return status


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> ImagePolicyWebhook:
    kubeconfig, durations, default_allow = parse_configuration(conf)
    # A WebhookConfigError (a ValueError) stops start-up with its reason.
    client = load_webhook_kubeconfig(kubeconfig, Backoff(duration=durations["retryBackoff"] or 0.5))
    deps.background.append(client.run)
    return ImagePolicyWebhook(client, durations["allowTTL"], durations["denyTTL"], default_allow)
