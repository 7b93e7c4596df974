"""`kubegate kms-plugin --socket PATH --key-file FILE`."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .keys import KeyFileError, create
from .server import serve


def cmd_kms_plugin(a: argparse.Namespace) -> int:
    key_file = Path(a.key_file)
    if not key_file.exists():
        create(key_file)
        print(f"created {key_file} with key key-1", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(Path(a.socket), key_file))
    except (KeyFileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("kms-plugin", help="serve a KMS v2 plugin with local AES-GCM keys on a unix socket")
    p.add_argument("--socket", required=True, help="unix socket to listen on (the config's endpoint unix://PATH)")
    p.add_argument("--key-file", required=True,
                   help="`<key-id> <base64 32 bytes>` per line, the last one encrypts; created when missing")
    p.set_defaults(func=cmd_kms_plugin)
