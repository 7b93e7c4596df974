"""The README's flag table names every flag `kubegate up` accepts."""
from __future__ import annotations

import argparse
from pathlib import Path

from kubegate.server.config import add_server_flags

README = Path(__file__).resolve().parents[2] / "README.md"
PKI_FLAGS = {"--data-dir", "--apiserver-cert-extra-sans", "--advertise-address", "--key-type"}  # on the init line


def test_every_server_flag_is_in_the_readme_table() -> None:
    p = argparse.ArgumentParser()
    add_server_flags(p)
    text = README.read_text()
    table = text[text.index("## Flags"):text.index("## Benchmarks")]
    missing = [o for a in p._actions for o in a.option_strings
               if o.startswith("--") and o != "--help" and o not in PKI_FLAGS and f"`{o}`" not in table]
    assert missing == []
    for flag in PKI_FLAGS:
        assert flag in table
