"""Builds every component of a running server from its configuration (the one wiring point)."""
from __future__ import annotations

import datetime
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kubegate.admission.chain import (
    DEFAULT_ON as ADMISSION_DEFAULT_ON, AdmissionChain, AdmissionConfigError, PluginDeps, build_chain, enabled_plugins,
    read_config_file,
)
from kubegate.admission.plugins import PLUGINS, CSRRequester, RBACEscalation
from kubegate.api import events
from kubegate.api import csr_strategy
from kubegate.api.registry import ResourceRegistry, decode_kv
from kubegate.api.resources import RESOURCES, Resource
from kubegate.api.validation import PodOptions
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
from kubegate.controllers.client import CONTROLLER_MANAGER, ControllerClient, controller_user
from kubegate.controllers.clusterrole_aggregation import ClusterRoleAggregationController
from kubegate.controllers.deployment import DeploymentController
from kubegate.controllers.garbage_collector import GarbageCollector
from kubegate.controllers.replicaset import ReplicaSetController
from kubegate.controllers.resource_quota import ResourceQuotaController
from kubegate.controllers.root_ca import RootCAPublisher
from kubegate.controllers.csr_approving import CSRApprovingController
from kubegate.controllers.csr_cleaner import CSRCleaner
from kubegate.controllers.csr_signing import CONTROLLER as CSR_CONTROLLER, CSRSigningController
from kubegate.controllers.serviceaccount import ServiceAccountController
from kubegate.controllers.token import TokensController
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
from kubegate.server.cert_rotation import CertRotator
from kubegate.pki import renewal
from kubegate.pki.certs import PKIError, load_pair
from kubegate.pki.layout import PKIPaths
from kubegate.pki.revocation import RevocationSet
from kubegate.storage.cache import CacheSet
from kubegate.storage.encryption.store import EncryptingStore
from kubegate.storage.encryption.wiring import encrypting_store, kms_health_check
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
    return TokenRequestREST(by_plural, _signer(cfg), cfg.issuers[0], cfg.audiences, int(max_exp),
                            cfg.service_account_extend_token_expiration)


def _signer(cfg: ServerConfig) -> Signer:
    return Signer(load_signing_key(cfg.service_account_signing_key_file or str(Path(cfg.data_dir) / "pki" / "sa.key")))


def _controllers(cfg: ServerConfig, authorizer: Any, by_plural: dict[str, ResourceRegistry],
                 ca_file: str, admission: AdmissionChain) -> list[Callable[[], Awaitable[None]]]:
    """kube-controller-manager's controllers, each under its own identity (controllers/client.py)."""
    def client(name: str) -> ControllerClient:
        return ControllerClient(controller_user(name), authorizer, by_plural, admission)
    ca_pem = Path(ca_file).read_text()
    return [ServiceAccountController(client("service-account-controller")).run,
            RootCAPublisher(client("root-ca-cert-publisher"), ca_pem).run,
            TokensController(ControllerClient(CONTROLLER_MANAGER, authorizer, by_plural, admission), ca_pem,
                             _signer(cfg).sign).run,
            ReplicaSetController(client("replicaset-controller")).run,
            DeploymentController(client("deployment-controller")).run,
            GarbageCollector(client("generic-garbage-collector"), sorted(by_plural)).run,
            CSRApprovingController(client(CSR_CONTROLLER), authorizer).run,
            CSRCleaner(client(CSR_CONTROLLER)).run,
            _csr_signing(cfg, client(CSR_CONTROLLER), authorizer).run]


def _csr_signing(cfg: ServerConfig, client: ControllerClient, authorizer: Any) -> CSRSigningController:
    """csrsigning with --cluster-signing-cert-file/--cluster-signing-key-file (default the cluster CA)."""
    if bool(cfg.cluster_signing_cert_file) != bool(cfg.cluster_signing_key_file):
        raise ConfigError("cannot specify --cluster-signing-cert-file without --cluster-signing-key-file "
                          "or vice versa")
    pki = Path(cfg.data_dir) / "pki"
    try:
        ca_cert, ca_key = load_pair(Path(cfg.cluster_signing_cert_file or pki / "ca.crt"),
                                    Path(cfg.cluster_signing_key_file or pki / "ca.key"))
    except PKIError as e:
        raise ConfigError(f"cluster signing CA: {e}") from None
    return CSRSigningController(client, authorizer, ca_cert, ca_key,
                                datetime.timedelta(seconds=cfg.cluster_signing_duration))


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
                   proxy: RequestHeaderAuthenticator | None, revoked: RevocationSet) -> Authenticator:
    """Upstream's request order: requestheader, x509, bearer tokens (only when some token
    authenticator is configured); then the group adder and anonymous."""
    authenticators: list[Authenticator] = []
    if proxy is not None:
        authenticators.append(proxy)
    if cfg.basic_auth_file:
        log.warning(BASIC_AUTH_INSECURE)
        authenticators.append(BasicAuthenticator.from_file(cfg.basic_auth_file))
    authenticators.append(X509Authenticator(Path(client_ca).read_bytes(), revoked=revoked))
    if tokens is not None:
        audiences = tuple(cfg.audiences)
        authenticators += [BearerAuthenticator(tokens, audiences), WebSocketProtocolAuthenticator(tokens, audiences)]
    return build_request_authenticator(authenticators, AnonymousAuthenticator() if cfg.anonymous_auth else None)


async def build(cfg: ServerConfig) -> tuple[app_mod.Components, ssl.SSLContext]:
    cert, key, client_ca = _pki(cfg)
    ssl_ctx = server_context(cert, key, client_ca)
    # The serving certificate is renewed only when it is the layout's own (no --tls-cert-file).
    rotator = CertRotator(PKIPaths(Path(cfg.data_dir)), ssl_ctx, cert, key, owned=tuple(
        n for n in renewal.SERVER_OWNED if n != "apiserver" or not cfg.tls_cert_file))
    rotator.check()
    proxy = _requestheader(cfg)
    file_authorizers = _file_authorizers(cfg)
    admission_plugins, admission_config = _admission_options(cfg)
    if proxy is not None:
        # As upstream, the proxy's CA joins the CAs the TLS handshake names to clients.
        ssl_ctx.load_verify_locations(cadata=proxy.ca_pem.decode())
    encryption_tasks: list[Callable[[], Awaitable[None]]] = []
    store = encrypting_store(SQLiteStore(str(cfg.db_path)), cfg.encryption_provider_config,
                             cfg.encryption_provider_config_automatic_reload, RESOURCES, encryption_tasks)
    await store.start()
    caches = CacheSet(store, lambda prefix: decode_kv)
    prepare, validate = app_mod.registry_hooks(PodOptions(allow_privileged=cfg.allow_privileged))

    registries: dict[tuple[str, str, str], ResourceRegistry] = {}
    by_plural: dict[str, ResourceRegistry] = {}
    shared: dict[str, ResourceRegistry] = {}
    for r in RESOURCES:
        if not r.persisted:
            continue
        cache = await caches.cache(r.key_prefix + "/")
        reg = ResourceRegistry(r, store, cache, prepare, validate)
        if isinstance(store, EncryptingStore):
            reg.stale = store.stale  # an unchanged update still rewrites a value the writer did not write
        registries[(r.group, r.version, r.plural)] = reg
        if r.group in ("", "apps", "batch", "rbac.authorization.k8s.io", "certificates.k8s.io", "networking.k8s.io",
                       "coordination.k8s.io", "storage.k8s.io"):
            by_plural.setdefault(r.plural, reg)
        shared.setdefault(r.key_prefix, reg)
        if r.group == "events.k8s.io":
            reg.view, reg.to_storage = events.from_core, events.to_core

    by_plural["certificatesigningrequests"].update_strategy = csr_strategy.update
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
        reg.after_write.append(inf.wait_for)  # a written role or binding takes effect before the reply

    node_graph = Graph()
    node_mode = "Node" in cfg.authorization_mode
    if node_mode:
        for plural, handler in (("pods", node_graph.pod_event), ("persistentvolumes", node_graph.pv_event)):
            reg = by_plural[plural]
            inf = Informer(reg.cache, handler)
            inf.prime()
            informers.append(inf)
            reg.after_write.append(inf.wait_for)  # a bound or deleted pod changes what its node may read before the reply

    authorizer, rule_resolver = _authorizer(cfg, rbac, NodeAuthorizer(node_graph), file_authorizers)
    token_tasks: list[Callable[[], Awaitable[None]]] = []
    token_chain = _token_authenticators(cfg, by_plural, token_tasks)
    tokens = TokenCache(TokenUnion(token_chain)) if token_chain else None
    revoked = RevocationSet()
    revocations = Informer(by_plural["configmaps"].cache, revoked.handle)
    revocations.prime()
    informers.append(revocations)
    # `kubegate certs revoke` writes the ConfigMap: the revocation holds before the write returns.
    by_plural["configmaps"].after_write.append(revocations.wait_for)
    authn = _authenticator(cfg, client_ca, tokens, proxy, revoked)

    async def authenticate(req: AuthRequest) -> UserInfo:
        res = await authn.authenticate(req)
        if res is None:
            raise AuthenticationError("Unauthorized")
        return res.user

    admission_deps = PluginDeps(by_plural, registries, authorizer, cfg)
    try:
        admission = build_chain(admission_plugins, PLUGINS, admission_config, admission_deps,
                                guards=[RBACEscalation(EscalationGuard(authorizer, rbac)), CSRRequester()])
    except AdmissionConfigError as e:
        raise ConfigError(str(e)) from None

    from kubegate import schema

    def patch_meta(r: Resource) -> Any:
        return schema.patch_meta(r.schema)

    rest = RESTHandler(registries, admission, patch_meta)
    rest.subresource_creators[("serviceaccounts", "token")] = _token_requests(cfg, by_plural).create
    ns_controller = NamespaceController(
        ControllerClient(controller_user("namespace-controller"), authorizer, by_plural, admission),
        [reg for reg in shared.values() if reg.resource.namespaced])
    aggregation = ClusterRoleAggregationController(by_plural["clusterroles"])
    background = [inf.run for inf in informers] + [ns_controller.run, aggregation.run]
    background += token_tasks
    background += _controllers(cfg, authorizer, by_plural, client_ca, admission)
    background.append(ResourceQuotaController(
        ControllerClient(controller_user("resourcequota-controller"), authorizer, by_plural, admission),
        [reg for reg in registries.values() if reg.resource.namespaced]).run)
    background += admission_deps.background
    background += encryption_tasks
    background.append(rotator.run)
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
        netpol=NetpolReviews(authorizer, {p: by_plural[p] for p in ("namespaces", "pods", "networkpolicies")}),
        cert_warnings=rotator.warnings,
        kms_health=kms_health_check(store, cfg.encryption_provider_config_automatic_reload))
    return comps, ssl_ctx


def _admission_options(cfg: ServerConfig) -> tuple[list[str], dict[str, dict[str, Any] | None]]:
    """The enabled admission plugins in upstream's order and their configurations, checked before
    anything is stored. NodeRestriction comes with the Node authorizer (as kubeadm enables it):
    without it a node could write any Node and any pod the authorizer lets through."""
    default_on = ADMISSION_DEFAULT_ON | ({"NodeRestriction"} if "Node" in cfg.authorization_mode else set())
    try:
        names = enabled_plugins(cfg.enable_admission_plugins, cfg.disable_admission_plugins, default_on)
        return names, read_config_file(cfg.admission_control_config_file, names)
    except AdmissionConfigError as e:
        raise ConfigError(str(e)) from None


def _rbac_handler(rbac: RBACAuthorizer, kind: str) -> Any:
    def handle(typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ == "DELETED":
            rbac.delete(kind, obj or old or {})
        elif obj is not None:
            rbac.upsert(kind, obj)
    return handle
