"""Admission: the chain (chain.py), the protocol (interface.py), one module per plugin."""
from __future__ import annotations

import sys
import types

# The `cel` package's __init__ imports its interactive command-line tool (typer, prompt_toolkit,
# rich: about 250 ms, a quarter of start-up). kubegate uses only the compiled extension and
# cel.stdlib, so an empty module stands in for the tool before anything here imports `cel`.
sys.modules.setdefault("cel.cli", types.ModuleType("cel.cli"))
