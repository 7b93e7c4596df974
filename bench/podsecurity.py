"""Pod Security checks: evaluation rate of the pure checks over upstream's 4,537 fixture pods, each
at the level and version of its folder (parsing the YAML is done once, outside the timing).

Pure and in-process (no server). Prints pods/s and checks that every pod decides as its folder says.
Run it alone with `.venv/bin/python bench/podsecurity.py`; `make bench` calls it too.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from kubegate.podsecurity import LevelVersion, evaluate_pod  # noqa: E402
from kubegate.podsecurity.api import parse_level, parse_version  # noqa: E402
from tests.fixtures import FIXTURES  # noqa: E402

ROUNDS = 5


def load() -> list[tuple[LevelVersion, dict[str, Any], dict[str, Any], bool]]:
    cases = []
    for f in sorted((FIXTURES / "pod-security").glob("*/v1.*/*/*.yaml")):
        pod = yaml.safe_load(f.read_text())
        lv = LevelVersion(parse_level(f.parents[2].name), parse_version(f.parents[1].name))
        cases.append((lv, pod.get("metadata") or {}, pod.get("spec") or {}, f.parent.name == "pass"))
    return cases


def main() -> str:
    cases = load()
    wrong = sum(evaluate_pod(lv, m, s).allowed != ok for lv, m, s, ok in cases)
    if wrong:
        raise SystemExit(f"pod security: {wrong} fixtures decided against their folder")
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for lv, m, s, _ok in cases:
            evaluate_pod(lv, m, s)
        best = min(best, time.perf_counter() - start)
    row = (f"{'Pod Security checks (4,537 fixtures)':<34} {len(cases) / best:>9.0f} pods/s   "
           f"all decide as their folder says (best of {ROUNDS})")
    print(row, flush=True)
    return row


if __name__ == "__main__":
    main()
