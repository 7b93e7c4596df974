"""Builds every component of a running server from its configuration (the one wiring point)."""
from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from kubegate.admission.namespace_lifecycle import NamespaceLifecycle
from kubegate.api import events
from kubegate.api.registry import ResourceRegistry, decode_kv
from kubegate.api.resources import RESOURCES, Resource
from kubegate.authn import AuthenticationError, Authenticator, AuthRequest
from kubegate.authn.anonymous import AnonymousAuthenticator
from kubegate.authn.token import BearerAuthenticator, TokenAuthenticator, TokenCache, TokenUnion
from kubegate.authn.union import build_request_authenticator
from kubegate.authn.user import UserInfo
from kubegate.authn.x509 import X509Authenticator
from kubegate.authz.always import AlwaysAllow, AlwaysDeny
from kubegate.authz.privileged import PrivilegedGroups
from kubegate.authz.rbac import RBACAuthorizer
from kubegate.authz.union import UnionAuthorizer, UnionRuleResolver
from kubegate.controllers.bootstrap import ensure_namespaces, reconcile_rbac
from kubegate.controllers.namespace import NamespaceController
from kubegate.server import app as app_mod
from kubegate.server.config import ServerConfig
from kubegate.server.discovery import Discovery
from kubegate.server.informer import Informer
from kubegate.server.openapi import OpenAPI
from kubegate.server.rest import RESTHandler
from kubegate.server.reviews import Reviews
from kubegate.server.tls import server_context
from kubegate.storage.cache import CacheSet
from kubegate.storage.sqlite import SQLiteStore

log = logging.getLogger("kubegate.composition")

_RBAC_KINDS = {"clusterroles": "ClusterRole", "roles": "Role", "clusterrolebindings": "ClusterRoleBinding",
               "rolebindings": "RoleBinding"}


def _pki(cfg: ServerConfig) -> tuple[str, str, str]:
    pki = Path(cfg.data_dir) / "pki"
    return (cfg.tls_cert_file or str(pki / "apiserver.crt"),
            cfg.tls_private_key_file or str(pki / "apiserver.key"),
            cfg.client_ca_file or str(pki / "ca.crt"))


def _authorizer(cfg: ServerConfig, rbac: RBACAuthorizer) -> tuple[UnionAuthorizer, UnionRuleResolver]:
    """The authorizer chain and the rule resolvers behind SelfSubjectRulesReview. Upstream leaves
    the system:masters authorizer out of rule resolution; cluster-admin's binding covers it."""
    modes: list[Any] = [{"AlwaysAllow": AlwaysAllow, "AlwaysDeny": AlwaysDeny}[mode]() if mode != "RBAC" else rbac
                        for mode in cfg.authorization_mode]
    return UnionAuthorizer([PrivilegedGroups(), *modes]), UnionRuleResolver(modes)


def _token_authenticators(cfg: ServerConfig, by_plural: dict[str, ResourceRegistry]) -> list[TokenAuthenticator]:
    """Upstream's token order: static file, service-account JWTs, bootstrap, OIDC, webhook."""
    tokens: list[TokenAuthenticator] = []
    return tokens


def _authenticator(cfg: ServerConfig, client_ca: str, tokens: TokenAuthenticator | None) -> Authenticator:
    """Upstream's request order: requestheader, x509, bearer tokens (only when some token
    authenticator is configured); then the group adder and anonymous."""
    authenticators: list[Authenticator] = [X509Authenticator(Path(client_ca).read_bytes())]
    if tokens is not None:
        authenticators.append(BearerAuthenticator(tokens, tuple(cfg.api_audiences)))
    return build_request_authenticator(authenticators, AnonymousAuthenticator() if cfg.anonymous_auth else None)


async def build(cfg: ServerConfig) -> tuple[app_mod.Components, ssl.SSLContext]:
    cert, key, client_ca = _pki(cfg)
    ssl_ctx = server_context(cert, key, client_ca)
    store = SQLiteStore(str(cfg.db_path))
    await store.start()
    caches = CacheSet(store, lambda prefix: decode_kv)
    prepare, validate = app_mod.registry_hooks()

    registries: dict[tuple[str, str, str], ResourceRegistry] = {}
    by_plural: dict[str, ResourceRegistry] = {}
    shared: dict[str, ResourceRegistry] = {}
    for r in RESOURCES:
        if not r.persisted:
            continue
        cache = await caches.cache(r.key_prefix + "/")
        reg = ResourceRegistry(r, store, cache, prepare, validate)
        registries[(r.group, r.version, r.plural)] = reg
        if r.group in ("", "apps", "rbac.authorization.k8s.io", "certificates.k8s.io", "networking.k8s.io",
                       "coordination.k8s.io", "storage.k8s.io"):
            by_plural.setdefault(r.plural, reg)
        shared.setdefault(r.key_prefix, reg)
        if r.group == "events.k8s.io":
            reg.view, reg.to_storage = events.from_core, events.to_core

    await ensure_namespaces(by_plural["namespaces"])
    written = await reconcile_rbac(by_plural)
    if written:
        log.info("bootstrap: wrote %d default RBAC objects", written)

    rbac = RBACAuthorizer()
    informers = []
    for plural, kind in _RBAC_KINDS.items():
        reg = by_plural[plural]
        inf = Informer(reg.cache, _rbac_handler(rbac, kind))
        inf.prime()
        informers.append(inf)
        reg.after_write = inf.wait_for  # a written role or binding takes effect before the reply

    authorizer, rule_resolver = _authorizer(cfg, rbac)
    token_chain = _token_authenticators(cfg, by_plural)
    tokens = TokenCache(TokenUnion(token_chain)) if token_chain else None
    authn = _authenticator(cfg, client_ca, tokens)

    async def authenticate(req: AuthRequest) -> UserInfo:
        res = await authn.authenticate(req)
        if res is None:
            raise AuthenticationError("Unauthorized")
        return res.user

    lifecycle = NamespaceLifecycle(
        lambda name: (lambda d: None if d is None else d.obj)(by_plural["namespaces"].get_cached(None, name)))

    async def admit(operation: str, r: Resource, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                    namespace: str | None, user: UserInfo) -> None:
        lifecycle.admit(operation, r, obj if obj is not None else old, namespace)

    from kubegate import schema

    def patch_meta(r: Resource) -> Any:
        return schema.patch_meta(r.schema)

    rest = RESTHandler(registries, admit, patch_meta)
    ns_controller = NamespaceController(
        by_plural["namespaces"],
        [reg for reg in shared.values() if reg.resource.namespaced])
    background = [inf.run for inf in informers] + [ns_controller.run]
    host = cfg.advertise_address or cfg.bind_address
    comps = app_mod.Components(
        store=store, authenticate=authenticate, authorizer=authorizer,
        rest=rest, discovery=Discovery(f"{host}:{cfg.secure_port}"),
        reviews=Reviews(authorizer, rule_resolver), openapi=OpenAPI(), background=background)
    return comps, ssl_ctx


def _rbac_handler(rbac: RBACAuthorizer, kind: str) -> Any:
    def handle(typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ == "DELETED":
            rbac.delete(kind, obj or old or {})
        elif obj is not None:
            rbac.upsert(kind, obj)
    return handle
