"""Builds every component of a running server from its configuration (the one wiring point)."""
from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kubegate.admission.namespace_lifecycle import NamespaceLifecycle
from kubegate.admission.node_restriction import NodeRestriction
from kubegate.api import events
from kubegate.api.registry import ResourceRegistry, decode_kv
from kubegate.api.resources import RESOURCES, Resource
from kubegate.authn import AuthenticationError, Authenticator, AuthRequest
from kubegate.authn.anonymous import AnonymousAuthenticator
from kubegate.authn import requestheader
from kubegate.authn.requestheader import RequestHeaderAuthenticator, RequestHeaderConfig
from kubegate.authn.basicauth import INSECURE_WARNING as BASIC_AUTH_INSECURE, BasicAuthenticator
from kubegate.authn.bootstrap_token import NAMESPACE as BOOTSTRAP_NAMESPACE, BootstrapTokenAuthenticator
from kubegate.authn.token import AudienceAgnostic, BearerAuthenticator, TokenAuthenticator, TokenCache, TokenUnion
from kubegate.authn.tokenfile import StaticTokenAuthenticator
from kubegate.authn.websocket_token import WebSocketProtocolAuthenticator
from kubegate.authn import oidc
from kubegate.authn.webhook_token import WebhookTokenAuthenticator, cached as webhook_token_cache
from kubegate.authn.union import aggregate_message, build_request_authenticator
from kubegate.authn.user import UserInfo
from kubegate.authn.x509 import X509Authenticator
from kubegate.authz.abac import PolicyLoadError, load_policy_file
from kubegate.authz.always import AlwaysAllow, AlwaysDeny
from kubegate.authz.escalation import EscalationGuard
from kubegate.authz.node import NodeAuthorizer
from kubegate.authz.node_graph import Graph
from kubegate.authz.privileged import PrivilegedGroups
from kubegate.authz.rbac import RBACAuthorizer
from kubegate.authz.union import UnionAuthorizer, UnionRuleResolver
from kubegate.authz.webhook import WebhookAuthorizer
from kubegate.controllers.bootstrap import ensure_namespaces, reconcile_rbac
from kubegate.controllers.clusterrole_aggregation import ClusterRoleAggregationController
from kubegate.controllers.namespace import NamespaceController
from kubegate.controllers.tokencleaner import TokenCleaner
from kubegate.server import app as app_mod
from kubegate.server.config import ConfigError, ServerConfig, authorization_errors
from kubegate.server.discovery import Discovery
from kubegate.server.explain_api import ExplainAPI
from kubegate.server import impersonation
from kubegate.server.informer import Informer
from kubegate.server.netpol_api import NetpolReviews
from kubegate.server.openapi import OpenAPI
from kubegate.server.rest import RESTHandler
from kubegate.server.reviews import Reviews
from kubegate.server.tokenrequest import TokenRequestREST
from kubegate.server.tokenreview import TokenReviewer
from kubegate.serviceaccount.authenticator import BoundValidator, JWTAuthenticator, LegacyValidator, RegistryLookup
from kubegate.serviceaccount.claims import LEGACY_ISSUER
from kubegate.serviceaccount.discovery import OpenIDMetadata, openid_metadata
from kubegate.serviceaccount.keys import KeySet, Signer, load_public_keys, load_signing_key
from kubegate.server.tls import server_context
from kubegate.storage.cache import CacheSet
from kubegate.storage.sqlite import SQLiteStore
from kubegate.webhook.client import WebhookConfigError, load_webhook_kubeconfig

log = logging.getLogger("kubegate.composition")

_RBAC_KINDS = {"clusterroles": "ClusterRole", "roles": "Role", "clusterrolebindings": "ClusterRoleBinding",
               "rolebindings": "RoleBinding"}


def _pki(cfg: ServerConfig) -> tuple[str, str, str]:
    pki = Path(cfg.data_dir) / "pki"
    return (cfg.tls_cert_file or str(pki / "apiserver.crt"),
            cfg.tls_private_key_file or str(pki / "apiserver.key"),
            cfg.client_ca_file or str(pki / "ca.crt"))


def _file_authorizers(cfg: ServerConfig) -> dict[str, Any]:
    """Upstream's authorization option validation, then the authorizers configured by files (ABAC
    policy, webhook kubeconfig), loaded in mode order before anything is stored or served: a bad
    flag or file stops start-up with upstream's message."""
    errs = authorization_errors(cfg)
    if errs:
        raise ConfigError(aggregate_message(errs))
    loaded: dict[str, Any] = {}
    for mode in cfg.authorization_mode:
        try:
            if mode == "ABAC":
                loaded[mode] = load_policy_file(str(cfg.authorization_policy_file))
            elif mode == "Webhook":
                client = load_webhook_kubeconfig(str(cfg.authorization_webhook_config_file))
                loaded[mode] = WebhookAuthorizer(client, cfg.authorization_webhook_version,
                                                 cfg.authorization_webhook_cache_authorized_ttl,
                                                 cfg.authorization_webhook_cache_unauthorized_ttl)
        except (PolicyLoadError, WebhookConfigError, ValueError) as e:
            raise ConfigError(str(e)) from None
    return loaded


def _authorizer(cfg: ServerConfig, rbac: RBACAuthorizer, node: NodeAuthorizer,
                loaded: dict[str, Any]) -> tuple[UnionAuthorizer, UnionRuleResolver]:
    """The authorizer chain and the rule resolvers behind SelfSubjectRulesReview. Upstream leaves
    the system:masters authorizer out of rule resolution; cluster-admin's binding covers it."""
    def build(mode: str) -> Any:
        if mode == "RBAC":
            return rbac
        if mode == "Node":
            return node
        if mode in loaded:
            return loaded[mode]
        return {"AlwaysAllow": AlwaysAllow, "AlwaysDeny": AlwaysDeny}[mode]()
    modes: list[Any] = [build(mode) for mode in cfg.authorization_mode]
    return UnionAuthorizer([PrivilegedGroups(), *modes]), UnionRuleResolver(modes)


def _service_account_keys(cfg: ServerConfig) -> KeySet:
    """--service-account-key-file (default DIR/pki/sa.pub): the keys that verify SA tokens."""
    return KeySet(load_public_keys(cfg.service_account_key_file or [str(Path(cfg.data_dir) / "pki" / "sa.pub")]))


def _token_requests(cfg: ServerConfig, by_plural: dict[str, ResourceRegistry]) -> TokenRequestREST:
    """The TokenRequest subresource, signing with --service-account-signing-key-file for the first issuer."""
    max_exp = cfg.service_account_max_token_expiration
    if max_exp and not 3600 <= max_exp <= 2**32:
        raise ConfigError("the service-account-max-token-expiration must be between 1 hour and 2^32 seconds")
    signer = Signer(load_signing_key(cfg.service_account_signing_key_file
                                     or str(Path(cfg.data_dir) / "pki" / "sa.key")))
    return TokenRequestREST(by_plural, signer, cfg.issuers[0], cfg.audiences, int(max_exp),
                            cfg.service_account_extend_token_expiration)


def _issuer_discovery(cfg: ServerConfig, external_address: str) -> OpenIDMetadata | None:
    try:
        return openid_metadata(cfg.issuers[0], cfg.service_account_jwks_uri, external_address,
                               _service_account_keys(cfg))
    except ValueError as e:
        log.info("service account issuer discovery disabled: %s", e)
        return None


def _token_authenticators(cfg: ServerConfig, by_plural: dict[str, ResourceRegistry],
                          background: list[Callable[[], Awaitable[None]]]) -> list[TokenAuthenticator]:
    """Upstream's token order: static file, service-account JWTs, bootstrap, OIDC, webhook. Authenticators
    that talk to remote services add their background tasks to `background`."""
    tokens: list[TokenAuthenticator] = []
    api_audiences = tuple(cfg.audiences)
    if cfg.token_auth_file:
        tokens.append(AudienceAgnostic(StaticTokenAuthenticator.from_file(cfg.token_auth_file), api_audiences))
    sa_keys, lookup = _service_account_keys(cfg), RegistryLookup(by_plural)
    legacy = LegacyValidator(lookup if cfg.service_account_lookup else None, lookup.mark_legacy_used)
    tokens.append(JWTAuthenticator([LEGACY_ISSUER], sa_keys, list(api_audiences), legacy))
    tokens.append(JWTAuthenticator(cfg.issuers, sa_keys, list(api_audiences), BoundValidator(lookup)))
    if cfg.enable_bootstrap_token_auth:
        secrets = by_plural["secrets"]

        def bootstrap_secret(name: str) -> dict[str, Any] | None:
            cached = secrets.get_cached(BOOTSTRAP_NAMESPACE, name)
            return None if cached is None else cached.obj
        tokens.append(AudienceAgnostic(BootstrapTokenAuthenticator(bootstrap_secret), api_audiences))
    try:
        oidc_opts = oidc.options_from_flags(
            cfg.oidc_issuer_url, cfg.oidc_client_id, cfg.oidc_username_claim, cfg.oidc_username_prefix,
            cfg.oidc_groups_claim, cfg.oidc_groups_prefix, cfg.oidc_required_claim, cfg.oidc_signing_algs,
            cfg.oidc_ca_file)
        if oidc_opts is not None:
            provider = oidc.OIDCAuthenticator(oidc_opts)
            tokens.append(AudienceAgnostic(provider, api_audiences))
            background.append(provider.run)
        if cfg.authentication_token_webhook_config_file:
            client = load_webhook_kubeconfig(cfg.authentication_token_webhook_config_file)
            reviewer = WebhookTokenAuthenticator(client, cfg.authentication_token_webhook_version, api_audiences)
            tokens.append(webhook_token_cache(reviewer, cfg.authentication_token_webhook_cache_ttl))
            background.append(client.run)
    except (oidc.OIDCConfigError, WebhookConfigError, ValueError) as e:
        raise ConfigError(str(e)) from None
    return tokens


def _requestheader(cfg: ServerConfig) -> RequestHeaderAuthenticator | None:
    """The authenticating proxy; on only when --requestheader-client-ca-file is given."""
    ca_file = cfg.requestheader_client_ca_file
    if not ca_file:
        return None
    rh = RequestHeaderConfig(
        username_headers=tuple(cfg.requestheader_username_headers), uid_headers=tuple(cfg.requestheader_uid_headers),
        group_headers=tuple(cfg.requestheader_group_headers),
        extra_prefixes=tuple(cfg.requestheader_extra_headers_prefix),
        allowed_names=tuple(cfg.requestheader_allowed_names))
    errs, warnings = requestheader.validate(rh)
    if errs:
        raise ConfigError(aggregate_message(errs))
    for w in warnings:
        log.warning(w)
    try:
        return RequestHeaderAuthenticator(Path(ca_file).read_bytes(), rh)
    except OSError as e:
        raise ConfigError(f"open {ca_file}: {(e.strerror or str(e)).lower()}") from None
    except ValueError:
        raise ConfigError(f"error loading certs from {ca_file}: "
                          "data does not contain any valid RSA or ECDSA certificates") from None


def _authenticator(cfg: ServerConfig, client_ca: str, tokens: TokenAuthenticator | None,
                   proxy: RequestHeaderAuthenticator | None) -> Authenticator:
    """Upstream's request order: requestheader, x509, bearer tokens (only when some token
    authenticator is configured); then the group adder and anonymous."""
    authenticators: list[Authenticator] = []
    if proxy is not None:
        authenticators.append(proxy)
    if cfg.basic_auth_file:
        log.warning(BASIC_AUTH_INSECURE)
        authenticators.append(BasicAuthenticator.from_file(cfg.basic_auth_file))
    authenticators.append(X509Authenticator(Path(client_ca).read_bytes()))
    if tokens is not None:
        audiences = tuple(cfg.audiences)
        authenticators += [BearerAuthenticator(tokens, audiences), WebSocketProtocolAuthenticator(tokens, audiences)]
    return build_request_authenticator(authenticators, AnonymousAuthenticator() if cfg.anonymous_auth else None)


async def build(cfg: ServerConfig) -> tuple[app_mod.Components, ssl.SSLContext]:
    cert, key, client_ca = _pki(cfg)
    ssl_ctx = server_context(cert, key, client_ca)
    proxy = _requestheader(cfg)
    file_authorizers = _file_authorizers(cfg)
    if proxy is not None:
        # As upstream, the proxy's CA joins the CAs the TLS handshake names to clients.
        ssl_ctx.load_verify_locations(cadata=proxy.ca_pem.decode())
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

    node_graph = Graph()
    node_mode = "Node" in cfg.authorization_mode
    if node_mode:
        for plural, handler in (("pods", node_graph.pod_event), ("persistentvolumes", node_graph.pv_event)):
            reg = by_plural[plural]
            inf = Informer(reg.cache, handler)
            inf.prime()
            informers.append(inf)
            reg.after_write = inf.wait_for  # a bound or deleted pod changes what its node may read before the reply

    authorizer, rule_resolver = _authorizer(cfg, rbac, NodeAuthorizer(node_graph), file_authorizers)
    token_tasks: list[Callable[[], Awaitable[None]]] = []
    token_chain = _token_authenticators(cfg, by_plural, token_tasks)
    tokens = TokenCache(TokenUnion(token_chain)) if token_chain else None
    authn = _authenticator(cfg, client_ca, tokens, proxy)

    async def authenticate(req: AuthRequest) -> UserInfo:
        res = await authn.authenticate(req)
        if res is None:
            raise AuthenticationError("Unauthorized")
        return res.user

    escalation = EscalationGuard(authorizer, rbac)
    lifecycle = NamespaceLifecycle(
        lambda name: (lambda d: None if d is None else d.obj)(by_plural["namespaces"].get_cached(None, name)))

    # NodeRestriction comes with the Node authorizer (as kubeadm enables it): without it a node could
    # write any Node and any pod the authorizer lets through.
    node_restriction = NodeRestriction(
        lambda ns, name: _cached(by_plural["pods"], ns, name),
        lambda name: _cached(by_plural["nodes"], None, name)) if node_mode else None

    async def admit(operation: str, r: Resource, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                    namespace: str | None, user: UserInfo, *, subresource: str = "", name: str = "") -> None:
        lifecycle.admit(operation, r, obj if obj is not None else old, namespace)
        if node_restriction is not None:
            node_restriction.admit(operation, r, obj, old, namespace, user, subresource, name)
        if r.group == "rbac.authorization.k8s.io":
            await escalation.admit(operation, r.plural, obj, old, namespace, user)

    from kubegate import schema

    def patch_meta(r: Resource) -> Any:
        return schema.patch_meta(r.schema)

    rest = RESTHandler(registries, admit, patch_meta)
    rest.subresource_creators[("serviceaccounts", "token")] = _token_requests(cfg, by_plural).create
    ns_controller = NamespaceController(
        by_plural["namespaces"],
        [reg for reg in shared.values() if reg.resource.namespaced])
    aggregation = ClusterRoleAggregationController(by_plural["clusterroles"])
    background = [inf.run for inf in informers] + [ns_controller.run, aggregation.run]
    background += token_tasks
    if "Webhook" in file_authorizers:
        background.append(file_authorizers["Webhook"].run)
    if cfg.enable_bootstrap_token_auth:  # kubeadm runs the cleaner wherever bootstrap tokens are on
        background.append(TokenCleaner(by_plural["secrets"]).run)
    host = cfg.advertise_address or cfg.bind_address
    comps = app_mod.Components(
        store=store, authenticate=authenticate, authorizer=authorizer,
        rest=rest, discovery=Discovery(f"{host}:{cfg.secure_port}"),
        reviews=Reviews(authorizer, rule_resolver, TokenReviewer(tokens, cfg.audiences)), openapi=OpenAPI(),
        background=background, issuer_discovery=_issuer_discovery(cfg, f"{host}:{cfg.secure_port}"),
        impersonator=impersonation.Impersonator(authorizer),
        cleared_headers=requestheader.cleared_headers(proxy.config if proxy else None) | impersonation.HEADERS,
        explain=ExplainAPI(authorizer, rbac),
        netpol=NetpolReviews(authorizer, {p: by_plural[p] for p in ("namespaces", "pods", "networkpolicies")}))
    return comps, ssl_ctx


def _cached(reg: ResourceRegistry, namespace: str | None, name: str) -> dict[str, Any] | None:
    d = reg.get_cached(namespace, name)
    return None if d is None else d.obj


def _rbac_handler(rbac: RBACAuthorizer, kind: str) -> Any:
    def handle(typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ == "DELETED":
            rbac.delete(kind, obj or old or {})
        elif obj is not None:
            rbac.upsert(kind, obj)
    return handle
