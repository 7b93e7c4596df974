"""AlwaysAdmit (plugin/pkg/admission/admit, deprecated upstream): admits every request."""
from __future__ import annotations

from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import AdmissionRequest


class AlwaysAdmit:
    name = "AlwaysAdmit"

    async def admit(self, req: AdmissionRequest) -> None:
        return None

    async def validate(self, req: AdmissionRequest) -> None:
        return None


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> AlwaysAdmit:
    return AlwaysAdmit()
