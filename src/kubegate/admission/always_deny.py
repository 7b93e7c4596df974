"""AlwaysDeny (plugin/pkg/admission/deny): refuses every write in both phases, for tests."""
from __future__ import annotations

from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import AdmissionRequest
from kubegate.admission.refusals import forbidden

MESSAGE = "admission control is denying all modifications"


class AlwaysDeny:
    name = "AlwaysDeny"

    async def admit(self, req: AdmissionRequest) -> None:
        raise forbidden(req, MESSAGE)

    async def validate(self, req: AdmissionRequest) -> None:
        raise forbidden(req, MESSAGE)


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> AlwaysDeny:
    return AlwaysDeny()
