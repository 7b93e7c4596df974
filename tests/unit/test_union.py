"""Authenticator and authorizer composition: union rules, group adder, anonymous, privileged, always."""
from __future__ import annotations

from asyncio import run
from dataclasses import dataclass

import pytest

from kubegate.authn import AuthenticationError, AuthRequest, AuthResult
from kubegate.authn.anonymous import AnonymousAuthenticator
from kubegate.authn.union import (
    AuthenticatedGroupAdder,
    UnionAuthenticator,
    aggregate_message,
    build_request_authenticator,
)
from kubegate.authn.user import UserInfo
from kubegate.authz.always import AlwaysAllow, AlwaysDeny
from kubegate.authz.privileged import PrivilegedGroups
from kubegate.authz.types import Attributes, AuthzResult, Decision
from kubegate.authz.union import UnionAuthorizer


@dataclass
class Fixed:
    """An authenticator with a fixed answer: a user name, None, or an error message."""
    user: str | None = None
    error: str | None = None
    groups: tuple[str, ...] = ()
    calls: int = 0

    async def authenticate(self, req: AuthRequest) -> AuthResult | None:
        self.calls += 1
        if self.error:
            raise AuthenticationError(self.error)
        return AuthResult(UserInfo(self.user, groups=self.groups)) if self.user else None


REQ = AuthRequest(headers={}, path="/api")


def test_first_success_wins() -> None:
    second = Fixed("b")
    result = run(UnionAuthenticator([Fixed(), Fixed("a"), second]).authenticate(REQ))
    assert result is not None and result.user.name == "a"
    assert second.calls == 0


def test_errors_are_remembered_and_later_authenticators_still_tried() -> None:
    result = run(UnionAuthenticator([Fixed(error="bad cert"), Fixed("token-user")]).authenticate(REQ))
    assert result is not None and result.user.name == "token-user"
    with pytest.raises(AuthenticationError, match=r"^\[bad cert, invalid bearer token\]$"):
        run(UnionAuthenticator([Fixed(error="bad cert"), Fixed(), Fixed(error="invalid bearer token")]).authenticate(REQ))
    assert run(UnionAuthenticator([Fixed(), Fixed()]).authenticate(REQ)) is None


def test_aggregate_message() -> None:
    assert aggregate_message(["a"]) == "a"
    assert aggregate_message(["a", "b", "a"]) == "[a, b]"


def test_group_adder() -> None:
    def groups(user: str, own: tuple[str, ...]) -> tuple[str, ...]:
        result = run(AuthenticatedGroupAdder(Fixed(user, groups=own)).authenticate(REQ))
        assert result is not None
        return result.user.groups

    assert groups("jane", ("dev",)) == ("dev", "system:authenticated")
    assert groups("jane", ("system:authenticated", "dev")) == ("system:authenticated", "dev")
    assert groups("jane", ("system:unauthenticated",)) == ("system:unauthenticated",)
    assert groups("system:anonymous", ()) == ()
    assert run(AuthenticatedGroupAdder(Fixed()).authenticate(REQ)) is None


def test_no_credentials_becomes_anonymous() -> None:
    chain = build_request_authenticator([Fixed(), Fixed()], AnonymousAuthenticator())
    result = run(chain.authenticate(REQ))
    assert result is not None
    assert (result.user.name, result.user.groups, result.user.uid) == (
        "system:anonymous", ("system:unauthenticated",), "")


def test_bad_credentials_are_not_downgraded_to_anonymous() -> None:
    anonymous = Fixed("system:anonymous")
    chain = build_request_authenticator([Fixed(error="x509: certificate signed by unknown authority"), Fixed()],
                                        anonymous)
    with pytest.raises(AuthenticationError, match="unknown authority"):
        run(chain.authenticate(REQ))
    assert anonymous.calls == 0


def test_authenticated_user_gets_system_authenticated_and_anonymous_disabled() -> None:
    chain = build_request_authenticator([Fixed("alice", groups=("developers",))], None)
    result = run(chain.authenticate(REQ))
    assert result is not None and result.user.groups == ("developers", "system:authenticated")
    assert run(build_request_authenticator([Fixed()], None).authenticate(REQ)) is None


def test_anonymous_conditions_restrict_paths() -> None:
    anon = AnonymousAuthenticator(("/livez", "/readyz", "/healthz"))
    assert run(anon.authenticate(AuthRequest(headers={}, path="/healthz"))) is not None
    assert run(anon.authenticate(AuthRequest(headers={}, path="/healthz/etcd"))) is None
    assert run(anon.authenticate(AuthRequest(headers={}, path="/api"))) is None


# --- authorizers ---

ATTRS = Attributes(user=UserInfo("jane", groups=("dev",)), verb="get", path="/metrics")


@dataclass
class Answer:
    result: AuthzResult
    calls: int = 0

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        self.calls += 1
        return self.result


def test_union_authorizer_first_allow_or_deny_wins() -> None:
    last = Answer(AuthzResult(Decision.ALLOW, "late"))
    result = run(UnionAuthorizer([Answer(AuthzResult(Decision.NO_OPINION, "n1")),
                              Answer(AuthzResult(Decision.DENY, "denied by webhook")), last]).authorize(ATTRS))
    assert result == AuthzResult(Decision.DENY, "denied by webhook")
    assert last.calls == 0
    result = run(UnionAuthorizer([Answer(AuthzResult(Decision.NO_OPINION)),
                              Answer(AuthzResult(Decision.ALLOW, "RBAC: allowed by x"))]).authorize(ATTRS))
    assert result == AuthzResult(Decision.ALLOW, "RBAC: allowed by x")


def test_union_authorizer_all_no_opinion_joins_reasons_and_errors() -> None:
    result = run(UnionAuthorizer([
        Answer(AuthzResult(Decision.NO_OPINION, "no relationship found between node 'n1' and this object")),
        Answer(AuthzResult(Decision.NO_OPINION, "")),
        Answer(AuthzResult(Decision.NO_OPINION, "RBAC: role.rbac.authorization.k8s.io \"r\" not found")),
        Answer(AuthzResult(Decision.NO_OPINION, "", "webhook: timeout")),
        Answer(AuthzResult(Decision.NO_OPINION, "", "webhook2: refused")),
    ]).authorize(ATTRS))
    assert result.decision is Decision.NO_OPINION
    assert result.reason == ("no relationship found between node 'n1' and this object\n"
                             "RBAC: role.rbac.authorization.k8s.io \"r\" not found")
    assert result.error == "[webhook: timeout, webhook2: refused]"
    assert run(UnionAuthorizer([]).authorize(ATTRS)) == AuthzResult(Decision.NO_OPINION, "", None)


def test_privileged_groups() -> None:
    masters = Attributes(user=UserInfo("someone", groups=("x", "system:masters")), verb="delete",
                         resource="nodes", resource_request=True)
    assert run(PrivilegedGroups().authorize(masters)) == AuthzResult(Decision.ALLOW)
    assert run(PrivilegedGroups().authorize(ATTRS)) == AuthzResult(Decision.NO_OPINION)


def test_always_allow_and_deny() -> None:
    assert run(AlwaysAllow().authorize(ATTRS)) == AuthzResult(Decision.ALLOW)
    assert run(AlwaysDeny().authorize(ATTRS)) == AuthzResult(Decision.NO_OPINION, "Everything is forbidden.")
    chain = UnionAuthorizer([PrivilegedGroups(), AlwaysDeny()])
    assert run(chain.authorize(ATTRS)).reason == "Everything is forbidden."
