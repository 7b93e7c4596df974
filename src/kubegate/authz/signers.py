"""Permission on a certificate signer (upstream pkg/certauthorization): `verb` on
`certificates.k8s.io/signers` named after the signer, or failing that its `<domain>/*` wildcard.
The approval and signing admission plugins and the CSR controllers ask through here."""
from __future__ import annotations

from kubegate.authn.user import UserInfo
from kubegate.authz.types import Attributes, Authorizer

GROUP = "certificates.k8s.io"


def _attrs(user: UserInfo, verb: str, name: str) -> Attributes:
    return Attributes(user=user, verb=verb, api_group=GROUP, api_version="*", resource="signers", name=name,
                      resource_request=True)


async def authorized_for_signer(authorizer: Authorizer, user: UserInfo, verb: str, signer_name: str) -> bool:
    if (await authorizer.authorize(_attrs(user, verb, signer_name))).allowed:
        return True
    domain = signer_name.split("/", 1)[0]
    return (await authorizer.authorize(_attrs(user, verb, f"{domain}/*"))).allowed
