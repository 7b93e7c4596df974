"""The API objects a pod or a persistent volume names (upstream pkg/api/v1/pod and
pkg/api/v1/persistentvolume visitors), over wire-form (v1 JSON) objects.

The Node authorizer's graph and NodeRestriction admission both ask these questions, so they share
one answer. Empty names are skipped, as upstream's visitors skip them."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

# Volume sources whose secret reference is `secretRef.name` (VisitPodSecretNames' switch).
_SECRET_REF_SOURCES = ("cephfs", "cinder", "flexVolume", "rbd", "scaleIO", "iscsi", "storageos")


def _d(v: Any) -> Mapping[str, Any]:
    # dict and None first: an ABC isinstance costs several times a plain one, and decoded objects
    # are dicts with absent fields
    if isinstance(v, dict):
        return v
    return {} if v is None or not isinstance(v, Mapping) else v


def _items(v: Any) -> list[Mapping[str, Any]]:
    return [x for x in v if isinstance(x, Mapping)] if isinstance(v, list) else []


def _name(v: Any, key: str = "name") -> str:
    name = _d(v).get(key)
    return name if isinstance(name, str) else ""


def _spec(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return _d(pod.get("spec"))


def containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Init containers, then containers, then ephemeral containers (upstream's AllContainers order)."""
    spec = _spec(pod)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from _items(spec.get(key))


def is_mirror_pod(pod: Mapping[str, Any]) -> bool:
    return MIRROR_POD_ANNOTATION in _d(_d(pod.get("metadata")).get("annotations"))


def node_name(pod: Mapping[str, Any]) -> str:
    return _name(_spec(pod), "nodeName")


def service_account_name(pod: Mapping[str, Any]) -> str:
    """spec.serviceAccountName, or the deprecated spec.serviceAccount alias when it is empty (the
    v1 -> internal conversion rule)."""
    spec = _spec(pod)
    return _name(spec, "serviceAccountName") or _name(spec, "serviceAccount")


def _volumes(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _items(_spec(pod).get("volumes"))


def _projected_sources(volume: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _items(_d(volume.get("projected")).get("sources"))


def _secret_names(pod: Mapping[str, Any]) -> Iterator[str]:
    for ref in _items(_spec(pod).get("imagePullSecrets")):
        yield _name(ref)
    for c in containers(pod):
        for env_from in _items(c.get("envFrom")):
            if "secretRef" in env_from:
                yield _name(env_from.get("secretRef"))
        for env in _items(c.get("env")):
            ref = _d(env.get("valueFrom")).get("secretKeyRef")
            if ref is not None:
                yield _name(ref)
    for v in _volumes(pod):
        if "azureFile" in v:
            yield _name(v["azureFile"], "secretName")
        elif "projected" in v:
            for src in _projected_sources(v):
                if "secret" in src:
                    yield _name(src["secret"])
        elif "secret" in v:
            yield _name(v["secret"], "secretName")
        elif "csi" in v:
            yield _name(_d(v["csi"]).get("nodePublishSecretRef"))
        else:
            for key in _SECRET_REF_SOURCES:
                if key in v:
                    yield _name(_d(v[key]).get("secretRef"))
                    break


def pod_secret_names(pod: Mapping[str, Any]) -> list[str]:
    """Every secret the pod names: image pull secrets, env/envFrom, and volumes (VisitPodSecretNames)."""
    return [n for n in _secret_names(pod) if n]


def _configmap_names(pod: Mapping[str, Any]) -> Iterator[str]:
    for c in containers(pod):
        for env_from in _items(c.get("envFrom")):
            if "configMapRef" in env_from:
                yield _name(env_from.get("configMapRef"))
        for env in _items(c.get("env")):
            ref = _d(env.get("valueFrom")).get("configMapKeyRef")
            if ref is not None:
                yield _name(ref)
    for v in _volumes(pod):
        if "projected" in v:
            for src in _projected_sources(v):
                if "configMap" in src:
                    yield _name(src["configMap"])
        elif "configMap" in v:
            yield _name(v["configMap"])


def pod_configmap_names(pod: Mapping[str, Any]) -> list[str]:
    """Every configmap the pod names: env/envFrom and volumes (VisitPodConfigmapNames)."""
    return [n for n in _configmap_names(pod) if n]


def pod_pvc_names(pod: Mapping[str, Any]) -> list[str]:
    """Claims the pod mounts: persistentVolumeClaim volumes, and the `<pod>-<volume>` claim of each
    generic ephemeral volume (ephemeral.VolumeClaimName)."""
    pod_name = _name(pod.get("metadata"))
    names: list[str] = []
    for v in _volumes(pod):
        if "persistentVolumeClaim" in v:
            claim = _name(v["persistentVolumeClaim"], "claimName")
        elif "ephemeral" in v:
            claim = f"{pod_name}-{_name(v)}"
        else:
            continue
        if claim:
            names.append(claim)
    return names


def projects_cluster_trust_bundle(pod: Mapping[str, Any]) -> bool:
    return any("clusterTrustBundle" in src for v in _volumes(pod) for src in _projected_sources(v))


def mounts_pvc(pod: Mapping[str, Any]) -> bool:
    return any("persistentVolumeClaim" in v for v in _volumes(pod))


def pv_secret_refs(pv: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(namespace, name, kubelet-visible) of every secret a PersistentVolume names
    (VisitPVSecretNames): refs without a namespace fall back to the bound claim's namespace."""
    spec = _d(pv.get("spec"))
    claim_ns = _name(spec.get("claimRef"), "namespace")
    refs: list[tuple[str, str, bool]] = []

    def ref(r: Any, visible: bool, default_ns: str = "") -> None:
        if isinstance(r, Mapping):
            refs.append((_name(r, "namespace") or default_ns, _name(r), visible))

    for key in ("azureFile", "cephfs", "cinder", "flexVolume", "rbd", "scaleIO", "iscsi", "storageos", "csi"):
        if key not in spec:
            continue
        src = _d(spec[key])
        if key == "azureFile":
            refs.append((_name(src, "secretNamespace") or claim_ns, _name(src, "secretName"), True))
        elif key in ("cinder", "storageos"):
            ref(src.get("secretRef"), True)
        elif key == "csi":
            ref(src.get("controllerPublishSecretRef"), False)
            ref(src.get("controllerExpandSecretRef"), False)
            for secret_key in ("nodePublishSecretRef", "nodeStageSecretRef", "nodeExpandSecretRef"):
                ref(src.get(secret_key), True)
        else:
            ref(src.get("secretRef"), True, claim_ns)
        break
    return [r for r in refs if r[1]]
