"""Server options, with kube-apiserver's flag names and meanings.

Each flag's argparse dest is the name of a ServerConfig field (--authorization-mode ->
authorization_mode), so adding an option is one field plus one add_argument."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path

AUTHORIZATION_MODES = ("AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node")
DEFAULT_SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"  # kubeadm's


class ConfigError(Exception):
    """A configured file or value cannot be used: the server does not start (kube-apiserver's `Error: ...`)."""


@dataclass
class ServerConfig:
    data_dir: Path
    secure_port: int = 6443
    bind_address: str = "127.0.0.1"
    advertise_address: str | None = None
    tls_cert_file: str | None = None
    tls_private_key_file: str | None = None
    client_ca_file: str | None = None
    authorization_mode: list[str] = field(default_factory=lambda: ["Node", "RBAC"])
    authorization_policy_file: str | None = None
    authorization_webhook_config_file: str | None = None
    authorization_webhook_version: str = "v1beta1"
    authorization_webhook_cache_authorized_ttl: float = 300.0
    authorization_webhook_cache_unauthorized_ttl: float = 30.0
    anonymous_auth: bool = True
    allow_privileged: bool = True  # kubeadm's setting (upstream's flag default is false)
    api_audiences: list[str] = field(default_factory=list)
    apiserver_cert_extra_sans: list[str] = field(default_factory=list)
    key_type: str = "ecdsa"
    shutdown_delay_duration: float = 0.0
    requestheader_client_ca_file: str | None = None
    requestheader_allowed_names: list[str] = field(default_factory=list)
    requestheader_username_headers: list[str] = field(default_factory=list)
    requestheader_uid_headers: list[str] = field(default_factory=list)
    requestheader_group_headers: list[str] = field(default_factory=list)
    requestheader_extra_headers_prefix: list[str] = field(default_factory=list)
    token_auth_file: str | None = None
    basic_auth_file: str | None = None
    enable_bootstrap_token_auth: bool = False
    service_account_issuer: list[str] = field(default_factory=list)
    service_account_key_file: list[str] = field(default_factory=list)
    service_account_signing_key_file: str | None = None
    service_account_max_token_expiration: float = 0.0
    service_account_extend_token_expiration: bool = True
    service_account_lookup: bool = True
    service_account_jwks_uri: str = ""
    oidc_issuer_url: str = ""
    oidc_client_id: str = ""
    oidc_ca_file: str | None = None
    oidc_username_claim: str = "sub"
    oidc_username_prefix: str = ""
    oidc_groups_claim: str = ""
    oidc_groups_prefix: str = ""
    oidc_required_claim: list[str] = field(default_factory=list)
    oidc_signing_algs: list[str] = field(default_factory=lambda: ["RS256"])
    authentication_token_webhook_config_file: str | None = None
    authentication_token_webhook_cache_ttl: float = 120.0
    authentication_token_webhook_version: str = "v1beta1"
    enable_admission_plugins: list[str] = field(default_factory=list)
    disable_admission_plugins: list[str] = field(default_factory=list)
    admission_control_config_file: str | None = None
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    encryption_provider_config: str | None = None
    encryption_provider_config_automatic_reload: bool = False
    cluster_signing_cert_file: str | None = None
    cluster_signing_key_file: str | None = None
    cluster_signing_duration: float = 8760 * 3600.0

    @property
    def db_path(self) -> Path:
        return self.data_dir / "kubegate.db"

    @property
    def issuers(self) -> list[str]:
        """--service-account-issuer, or kubeadm's default; the first one signs."""
        return self.service_account_issuer or [DEFAULT_SERVICE_ACCOUNT_ISSUER]

    @property
    def audiences(self) -> list[str]:
        """--api-audiences, defaulting to the issuers as upstream does."""
        return self.api_audiences or self.issuers


def _bool(v: str) -> bool:
    if v.lower() in ("true", "1", "yes"):
        return True
    if v.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {v!r}")


def _duration(v: str) -> float:
    """A Go duration ("48h", "90m") in seconds."""
    from kubegate.protobuf.codec import ProtobufError, parse_duration
    try:
        return parse_duration(v) / 1e9
    except ProtobufError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def comma_list(v: str) -> list[str]:
    return [s.strip() for s in v.split(",") if s.strip()]


def string_slice(v: str) -> list[str]:
    """pflag's StringSlice: comma-separated, values kept as given (blank ones are the caller's to reject)."""
    return v.split(",") if v else []


def authorization_errors(cfg: ServerConfig) -> list[str]:
    """kube-apiserver's BuiltInAuthorizationOptions.Validate, in its order."""
    from kubegate.authz.messages import go_quote
    modes = cfg.authorization_mode
    errs = [] if modes else ["at least one authorization-mode must be passed"]
    for mode in modes:
        if mode not in AUTHORIZATION_MODES:
            errs.append(f"authorization-mode {go_quote(mode)} is not a valid mode")
        if mode == "ABAC" and not cfg.authorization_policy_file:
            errs.append("authorization-mode ABAC's authorization policy file not passed")
        if mode == "Webhook" and not cfg.authorization_webhook_config_file:
            errs.append("authorization-mode Webhook's authorization config file not passed")
    if cfg.authorization_policy_file and "ABAC" not in modes:
        errs.append("cannot specify --authorization-policy-file without mode ABAC")
    if cfg.authorization_webhook_config_file and "Webhook" not in modes:
        errs.append("cannot specify --authorization-webhook-config-file without mode Webhook")
    if len(set(modes)) != len(modes):
        quoted = " ".join(go_quote(m) for m in modes)
        errs.append(f"authorization-mode [{quoted}] has mode specified more than once")
    return errs


def add_pki_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", required=True, type=Path,
                   help="directory holding pki/, the kubeconfigs and the embedded store")
    p.add_argument("--apiserver-cert-extra-sans", type=comma_list, default=[],
                   help="extra Subject Alternative Names (IPs or DNS names), comma-separated, "
                        "for the API server serving certificate")
    p.add_argument("--advertise-address", default=None,
                   help="the IP address on which to advertise the apiserver (kubeconfigs, certificate SANs)")
    p.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa",
                   help="key algorithm for generated certificates: ECDSA P-256 (default) or RSA 2048")


def add_server_flags(p: argparse.ArgumentParser) -> None:
    add_pki_flags(p)
    p.add_argument("--secure-port", type=int, default=6443,
                   help="the port on which to serve HTTPS with authentication and authorization (0 = any)")
    p.add_argument("--bind-address", default="127.0.0.1",
                   help="the IP address on which to listen for the --secure-port port")
    p.add_argument("--tls-cert-file", default=None,
                   help="file containing the default x509 certificate for HTTPS (default DIR/pki/apiserver.crt)")
    p.add_argument("--tls-private-key-file", default=None,
                   help="file containing the x509 private key matching --tls-cert-file")
    p.add_argument("--client-ca-file", default=None,
                   help="client certificates signed by one of these CAs authenticate as CN (user) and O (groups) "
                        "(default DIR/pki/ca.crt)")
    p.add_argument("--authorization-mode", type=string_slice, default=["Node", "RBAC"],
                   help=f"ordered list of authorization plug-ins: {', '.join(AUTHORIZATION_MODES)} "
                        "(default Node,RBAC)")
    p.add_argument("--authorization-policy-file", default=None,
                   help="ABAC policy, one JSON object per line, used with --authorization-mode=ABAC")
    p.add_argument("--authorization-webhook-config-file", default=None,
                   help="kubeconfig-format file naming the remote service asked for SubjectAccessReviews, "
                        "used with --authorization-mode=Webhook")
    p.add_argument("--authorization-webhook-version", default="v1beta1",
                   help="authorization.k8s.io version of the SubjectAccessReview sent to the webhook: "
                        "v1 or v1beta1 (default v1beta1)")
    p.add_argument("--authorization-webhook-cache-authorized-ttl", type=_duration, default=300.0,
                   help="how long to cache 'authorized' answers from the webhook, a Go duration (default 5m0s)")
    p.add_argument("--authorization-webhook-cache-unauthorized-ttl", type=_duration, default=30.0,
                   help="how long to cache 'unauthorized' answers from the webhook, a Go duration (default 30s)")
    p.add_argument("--anonymous-auth", type=_bool, default=True,
                   help="enables anonymous requests (user system:anonymous, group system:unauthenticated); "
                        "what they may do is still decided by authorization (default true)")
    p.add_argument("--allow-privileged", type=_bool, default=True,
                   help="allow privileged and Windows hostProcess containers; false refuses them with 422 "
                        "(default true, as kubeadm sets it)")
    p.add_argument("--api-audiences", type=comma_list, default=[],
                   help="identifiers of the API; tokens must carry one of them as audience "
                        "(default: the --service-account-issuer values)")
    p.add_argument("--shutdown-delay-duration", type=float, default=0.0,
                   help="seconds to keep serving after SIGTERM while /readyz reports failure")
    p.add_argument("--requestheader-client-ca-file", default=None,
                   help="CA bundle that verifies the authenticating proxy's client certificate before the "
                        "usernames in --requestheader-username-headers are trusted")
    p.add_argument("--requestheader-allowed-names", type=string_slice, default=[],
                   help="client certificate common names allowed to provide the headers (empty: any certificate "
                        "signed by --requestheader-client-ca-file)")
    p.add_argument("--requestheader-username-headers", type=string_slice, default=[],
                   help="request headers to inspect for usernames; X-Remote-User is common")
    p.add_argument("--requestheader-uid-headers", type=string_slice, default=[],
                   help="request headers to inspect for UIDs; X-Remote-Uid is suggested")
    p.add_argument("--requestheader-group-headers", type=string_slice, default=[],
                   help="request headers to inspect for groups; X-Remote-Group is suggested")
    p.add_argument("--requestheader-extra-headers-prefix", type=string_slice, default=[],
                   help="request header prefixes to inspect for user extra; X-Remote-Extra- is suggested")
    p.add_argument("--encryption-provider-config", default=None,
                   help="EncryptionConfiguration file (apiserver.config.k8s.io/v1) choosing how each resource is "
                        "encrypted at rest: the first provider writes, all of them read")
    p.add_argument("--encryption-provider-config-automatic-reload", type=_bool, nargs="?", const=True, default=False,
                   help="reload --encryption-provider-config when the file changes, without a restart")
    p.add_argument("--token-auth-file", default=None,
                   help="CSV file of static bearer tokens: token,user,uid,\"group1,group2\"")
    p.add_argument("--basic-auth-file", default=None,
                   help="CSV file of HTTP Basic passwords: password,user,uid,\"group1,group2\" "
                        "(insecure; removed upstream in 1.19, kept by kubegate, off unless given)")
    p.add_argument("--enable-bootstrap-token-auth", type=_bool, nargs="?", const=True, default=False,
                   help="bootstrap tokens (Secrets of type bootstrap.kubernetes.io/token in kube-system) "
                        "authenticate; the token cleaner deletes expired ones")
    p.add_argument("--service-account-issuer", action="append", default=[],
                   help="issuer (iss) of service-account tokens; repeatable: the first signs new tokens, "
                        f"all are accepted (default {DEFAULT_SERVICE_ACCOUNT_ISSUER})")
    p.add_argument("--service-account-key-file", action="append", default=[],
                   help="PEM file of public (or private) RSA/ECDSA keys that verify service-account tokens; "
                        "repeatable (default DIR/pki/sa.pub)")
    p.add_argument("--service-account-signing-key-file", default=None,
                   help="PEM private key that signs service-account tokens (default DIR/pki/sa.key)")
    p.add_argument("--service-account-max-token-expiration", type=_duration, default=0.0,
                   help="longest validity a TokenRequest may get, a Go duration such as 48h "
                        "(between 1h and 2^32 s; default: no limit)")
    p.add_argument("--service-account-extend-token-expiration", type=_bool, default=True,
                   help="pod-bound tokens requested for 3607 s get a one-year expiry with a warnafter claim "
                        "(default true)")
    p.add_argument("--service-account-lookup", type=_bool, default=True,
                   help="legacy Secret-based tokens are valid only while their Secret and ServiceAccount "
                        "exist (default true)")
    p.add_argument("--service-account-jwks-uri", default="",
                   help="jwks_uri published in /.well-known/openid-configuration "
                        "(default https://<advertise address>:<port>/openid/v1/jwks)")
    p.add_argument("--oidc-issuer-url", default="",
                   help="https URL of the OpenID Connect provider whose ID tokens authenticate (its iss); "
                        "discovery and keys are fetched from it")
    p.add_argument("--oidc-client-id", default="",
                   help="client ID that ID tokens must be issued for (their aud); required with --oidc-issuer-url")
    p.add_argument("--oidc-ca-file", default=None,
                   help="CA bundle that verifies the provider's serving certificate (default: the host's roots)")
    p.add_argument("--oidc-username-claim", default="sub",
                   help="claim holding the username (default sub); claims other than email are prefixed with "
                        "the issuer URL and '#' unless --oidc-username-prefix is given")
    p.add_argument("--oidc-username-prefix", default="",
                   help="prefix for usernames from the provider; '-' disables prefixing")
    p.add_argument("--oidc-groups-claim", default="",
                   help="claim holding the user's groups, a string or an array of strings")
    p.add_argument("--oidc-groups-prefix", default="",
                   help="prefix for group names from the provider")
    p.add_argument("--oidc-required-claim", action="append", default=[],
                   help="key=value: a claim the ID token must carry with that value; repeatable")
    p.add_argument("--oidc-signing-algs", type=string_slice, default=["RS256"],
                   help="accepted signing algorithms: RS256/384/512, ES256/384/512, PS256/384/512 (default RS256)")
    p.add_argument("--authentication-token-webhook-config-file", default=None,
                   help="kubeconfig-format file naming the remote service asked for TokenReviews of bearer "
                        "tokens no other authenticator accepts")
    p.add_argument("--authentication-token-webhook-cache-ttl", type=_duration, default=120.0,
                   help="how long to cache the webhook's answers, a Go duration (default 2m0s)")
    p.add_argument("--authentication-token-webhook-version", default="v1beta1",
                   help="authentication.k8s.io version of the TokenReview sent to the webhook: v1 or v1beta1 "
                        "(default v1beta1)")
    p.add_argument("--enable-admission-plugins", type=string_slice, default=[],
                   help="admission plugins to enable in addition to the default-on ones (they always run in "
                        "upstream's fixed order); NodeRestriction is on by default with the Node authorizer")
    p.add_argument("--disable-admission-plugins", type=string_slice, default=[],
                   help="admission plugins to disable, default-on ones included")
    p.add_argument("--admission-control-config-file", default=None,
                   help="AdmissionConfiguration (apiserver.config.k8s.io/v1) file with plugin configurations")
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=300,
                   help="tolerationSeconds DefaultTolerationSeconds gives pods for node.kubernetes.io/not-ready")
    p.add_argument("--default-unreachable-toleration-seconds", type=int, default=300,
                   help="tolerationSeconds DefaultTolerationSeconds gives pods for node.kubernetes.io/unreachable")
    p.add_argument("--cluster-signing-cert-file", default=None,
                   help="CA certificate the CSR signing controller issues kubernetes.io/* certificates with "
                        "(default DIR/pki/ca.crt)")
    p.add_argument("--cluster-signing-key-file", default=None,
                   help="private key of --cluster-signing-cert-file (default DIR/pki/ca.key)")
    p.add_argument("--cluster-signing-duration", type=_duration, default=8760 * 3600.0,
                   help="longest validity of a signed certificate, a Go duration; a CSR's expirationSeconds "
                        "may ask for less, never under 10m (default 8760h0m0s)")


def config_from_args(a: argparse.Namespace) -> ServerConfig:
    names = {f.name for f in fields(ServerConfig)}
    return ServerConfig(**{k: v for k, v in vars(a).items() if k in names})
