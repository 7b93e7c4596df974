"""admissionReviewVersions negotiation and v1beta1 responses (apiserver webhook/request)."""
from __future__ import annotations

import base64
import json

import pytest

from kubegate.admission.webhooks import UnsupportedPatch, review_version, verify_response

PATCH = base64.b64encode(json.dumps([{"op": "add", "path": "/x", "value": 1}]).encode()).decode()


@pytest.mark.parametrize("versions,want", [
    (["v1", "v1beta1"], "v1"), (["v1beta1", "v1"], "v1beta1"), (["v2", "v1beta1"], "v1beta1"),
    (["v2"], None), ([], None)])
def test_the_first_known_version_is_sent(versions: list[str], want: str | None) -> None:
    assert review_version(versions) == want


def test_v1beta1_responses_are_not_checked_for_uid_or_kind() -> None:
    doc = {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
           "response": {"uid": "someone-else", "allowed": True, "warnings": ["w"]}}
    v = verify_response(doc, "mine", mutating=False, version="v1beta1")
    assert v.allowed and v.warnings == ["w"] and v.patch is None
    with pytest.raises(ValueError, match="expected response.uid"):
        verify_response(doc, "mine", mutating=False)


def test_v1beta1_patches() -> None:
    doc = {"response": {"allowed": True, "patch": PATCH, "patchType": "JSONPatch"}}
    assert verify_response(doc, "u", mutating=True, version="v1beta1").patch == [{"op": "add", "path": "/x", "value": 1}]
    # A validating webhook's patch is ignored rather than refused.
    assert verify_response(doc, "u", mutating=False, version="v1beta1").patch is None
    with pytest.raises(UnsupportedPatch, match='unsupported patch type ""'):
        verify_response({"response": {"allowed": True, "patch": PATCH}}, "u", mutating=True, version="v1beta1")
    with pytest.raises(ValueError, match="webhook response was absent"):
        verify_response({}, "u", mutating=True, version="v1beta1")
