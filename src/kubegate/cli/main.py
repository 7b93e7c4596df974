"""The `kubegate` command: init, up, who-can, explain-access, rolesum, netpol."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from kubegate.cli import access, certs, netpol, node, onboarding, secrets_encrypt, token
from kubegate.kmsplugin import cli as kmsplugin_cli
from kubegate.pki.kubeconfig import set_kubeconfig_server
from kubegate.pki.layout import KUBECONFIG_SPECS, PKIError, apiserver_url, init_pki
from kubegate.server.config import ConfigError, ServerConfig, add_pki_flags, add_server_flags, config_from_args
from kubegate.storage.encryption.config import ConfigError as EncryptionConfigError
from kubegate.storage.encryption.store import TransformError


def _init(data_dir: Path, extra_sans: list[str], advertise: str | None, key_type: str, port: int,
          quiet: bool = False) -> int:
    try:
        res = init_pki(data_dir, extra_sans=extra_sans, advertise_address=advertise, key_type=key_type,
                       secure_port=port)
    except PKIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not quiet:
        for m in res.messages:
            print(m)
    for w in res.warnings:
        print(f"W: {w}", file=sys.stderr)
    return 0


def _loopback(bind: str) -> str:
    return "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind


def cmd_init(a: argparse.Namespace) -> int:
    rc = _init(a.data_dir, a.apiserver_cert_extra_sans, a.advertise_address, a.key_type, a.secure_port)
    if rc == 0:
        print(f"\nYour cluster PKI is ready in {a.data_dir}. Start the server with:\n"
              f"  kubegate up --data-dir {a.data_dir}")
    return rc


def cmd_up(a: argparse.Namespace) -> int:
    cfg: ServerConfig = config_from_args(a)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname).1s %(name)s] %(message)s",
                        stream=sys.stderr)
    # init is idempotent (reuses what exists, refuses mismatched keys), so every start runs it.
    rc = _init(cfg.data_dir, cfg.apiserver_cert_extra_sans, cfg.advertise_address, cfg.key_type,
               cfg.secure_port or 6443, quiet=True)
    if rc:
        return rc
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    from kubegate.server.app import serve

    def ready(port: int) -> None:
        url = apiserver_url(cfg.advertise_address or _loopback(cfg.bind_address), port)
        for f in KUBECONFIG_SPECS:
            path = cfg.data_dir / f.file
            if path.exists():
                set_kubeconfig_server(path, url)
        admin = (cfg.data_dir / "admin.conf").resolve()
        print(f"kubegate is ready on https://{cfg.bind_address}:{port}", flush=True)
        print(f"export KUBECONFIG={admin}", flush=True)

    try:
        asyncio.run(serve(cfg, ready_cb=ready))
    except (PKIError, ConfigError, EncryptionConfigError, TransformError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubegate",
                                description="A Kubernetes-compatible API server built around its security machinery")
    sub = p.add_subparsers(dest="command", required=True)
    pi = sub.add_parser("init", help="write the cluster PKI and kubeconfigs (kubeadm's layout)")
    add_pki_flags(pi)
    pi.add_argument("--secure-port", type=int, default=6443, help="port written into the kubeconfigs")
    pi.set_defaults(func=cmd_init)
    pu = sub.add_parser("up", help="serve the Kubernetes API (runs init first when DIR has no PKI)")
    add_server_flags(pu)
    pu.set_defaults(func=cmd_up)
    access.add_commands(sub)
    certs.add_commands(sub)
    token.add_commands(sub)
    onboarding.add_commands(sub)
    node.add_commands(sub)
    netpol.add_commands(sub)
    secrets_encrypt.add_commands(sub)
    kmsplugin_cli.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    return int(a.func(a))


if __name__ == "__main__":
    sys.exit(main())
