"""Composition of authenticators, as upstream's request/union and group.AuthenticatedGroupAdder."""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

from kubegate.authn import AuthenticationError, Authenticator, AuthRequest, AuthResult
from kubegate.authn.user import ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS


def aggregate_message(messages: Sequence[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message as is, several de-duplicated in `[a, b]`."""
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


async def first_success(attempts: Iterable[Callable[[], Awaitable[AuthResult | None]]],
                        fail_on_error: bool = False) -> AuthResult | None:
    """Upstream's union rule: the first success wins; errors are remembered and the next attempt
    is made; if none succeeds and any failed, the aggregate error is raised. With fail_on_error
    the first error is raised at once."""
    errors: list[str] = []
    for attempt in attempts:
        try:
            result = await attempt()
        except AuthenticationError as e:
            if fail_on_error:
                raise
            errors.append(str(e))
            continue
        if result is not None:
            return result
    if errors:
        raise AuthenticationError(aggregate_message(errors))
    return None


class UnionAuthenticator:
    """First success wins. Errors are remembered and the next authenticator is tried; if none
    succeeds and any failed, the aggregate error is raised. With fail_on_error, the first error
    is raised at once (upstream's NewFailOnError, used to put anonymous after the real chain)."""

    def __init__(self, authenticators: Sequence[Authenticator], fail_on_error: bool = False) -> None:
        self._authenticators = tuple(authenticators)
        self._fail_on_error = fail_on_error

    async def authenticate(self, req: AuthRequest) -> AuthResult | None:
        return await first_success((functools.partial(a.authenticate, req) for a in self._authenticators),
                                   self._fail_on_error)


class AuthenticatedGroupAdder:
    """Appends system:authenticated to every non-anonymous user that carries neither
    system:authenticated nor system:unauthenticated."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def authenticate(self, req: AuthRequest) -> AuthResult | None:
        result = await self._authenticator.authenticate(req)
        if result is None:
            return None
        user = result.user
        if user.name == ANONYMOUS or ALL_AUTHENTICATED in user.groups or ALL_UNAUTHENTICATED in user.groups:
            return result
        return replace(result, user=replace(user, groups=user.groups + (ALL_AUTHENTICATED,)))


def build_request_authenticator(authenticators: Sequence[Authenticator],
                                anonymous: Authenticator | None) -> Authenticator:
    """kube-apiserver's assembly: union of the configured authenticators wrapped by the group adder,
    then, if anonymous auth is on, a fail-on-error union with the anonymous authenticator."""
    chain: Authenticator = AuthenticatedGroupAdder(UnionAuthenticator(authenticators))
    if anonymous is None:
        return chain
    return UnionAuthenticator((chain, anonymous), fail_on_error=True)
