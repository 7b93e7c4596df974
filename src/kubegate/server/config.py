"""Server options, with kube-apiserver's flag names and meanings.

Each flag's argparse dest is the name of a ServerConfig field (--authorization-mode ->
authorization_mode), so adding an option is one field plus one add_argument."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path

AUTHORIZATION_MODES = ("AlwaysAllow", "AlwaysDeny", "RBAC")


@dataclass
class ServerConfig:
    data_dir: Path
    secure_port: int = 6443
    bind_address: str = "127.0.0.1"
    advertise_address: str | None = None
    tls_cert_file: str | None = None
    tls_private_key_file: str | None = None
    client_ca_file: str | None = None
    authorization_mode: list[str] = field(default_factory=lambda: ["RBAC"])
    anonymous_auth: bool = True
    api_audiences: list[str] = field(default_factory=list)
    apiserver_cert_extra_sans: list[str] = field(default_factory=list)
    key_type: str = "ecdsa"
    shutdown_delay_duration: float = 0.0

    @property
    def db_path(self) -> Path:
        return self.data_dir / "kubegate.db"


def _bool(v: str) -> bool:
    if v.lower() in ("true", "1", "yes"):
        return True
    if v.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {v!r}")


def comma_list(v: str) -> list[str]:
    return [s.strip() for s in v.split(",") if s.strip()]


def _modes(v: str) -> list[str]:
    modes = [m.strip() for m in v.split(",") if m.strip()]
    for m in modes:
        if m not in AUTHORIZATION_MODES:
            raise argparse.ArgumentTypeError(
                f"authorization-mode {m!r} is not a valid mode (supported: {', '.join(AUTHORIZATION_MODES)})")
    if len(set(modes)) != len(modes):
        raise argparse.ArgumentTypeError(f"authorization-mode {v!r} has mode specified more than once")
    if not modes:
        raise argparse.ArgumentTypeError("at least one authorization-mode must be passed")
    return modes


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
    p.add_argument("--authorization-mode", type=_modes, default=["RBAC"],
                   help=f"ordered list of authorization plug-ins: {', '.join(AUTHORIZATION_MODES)} (default RBAC)")
    p.add_argument("--anonymous-auth", type=_bool, default=True,
                   help="enables anonymous requests (user system:anonymous, group system:unauthenticated); "
                        "what they may do is still decided by authorization (default true)")
    p.add_argument("--api-audiences", type=comma_list, default=[],
                   help="identifiers of the API; tokens must carry one of them as audience "
                        "(default: the first --service-account-issuer)")
    p.add_argument("--shutdown-delay-duration", type=float, default=0.0,
                   help="seconds to keep serving after SIGTERM while /readyz reports failure")


def config_from_args(a: argparse.Namespace) -> ServerConfig:
    names = {f.name for f in fields(ServerConfig)}
    return ServerConfig(**{k: v for k, v in vars(a).items() if k in names})
