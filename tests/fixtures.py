"""Where upstream's test data lives: ../shared/fixtures beside the checkout (KUBEGATE_SHARED overrides)."""
from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("KUBEGATE_SHARED") or Path(__file__).resolve().parents[2] / "shared")
FIXTURES = SHARED / "fixtures"
GOLDENS = FIXTURES / "apiserver-goldens"
