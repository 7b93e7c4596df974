"""Impersonation: `Impersonate-User`, `-Group`, `-Uid` and `-Extra-<key>` headers, each value checked
by the server's authorizer on the requestor before the request runs as the impersonated user
(upstream endpoints/filters/impersonation, with ConstrainedImpersonation, beta and on in 1.36).

Five modes are tried in upstream's order: associated-node, arbitrary-node, serviceaccount,
user-info (the constrained ones: `impersonate-on:<mode>:<verb>` on the request itself, then
`impersonate:<mode>` on each impersonated value in group authentication.k8s.io) and legacy
(`impersonate` on users/groups/serviceaccounts in the core group, uids and userextras in
authentication.k8s.io). The mode that last succeeded for a requestor is tried first, and the
first error met is the one reported, so a 403's wording depends on that history exactly as
upstream's does. Upstream also caches successful constrained checks for 10 s; kubegate does not,
so a revoked grant stops working at once.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from kubegate.api import errors
from kubegate.api.errors import StatusError
from kubegate.api.validation import names
from kubegate.authn import header_values
from kubegate.authn.requestheader import HeaderNames, extra_from_headers
from kubegate.authn.union import aggregate_message
from kubegate.authn.user import (
    ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS, NODES_GROUP, SERVICE_ACCOUNT_GROUP,
    SERVICE_ACCOUNT_USERNAME_PREFIX, SYSTEM_PRIVILEGED_GROUP, UserInfo,
)
from kubegate.authz.messages import forbidden_message, go_quote
from kubegate.authz.types import Attributes, Authorizer, Decision

USER_HEADER = "Impersonate-User"
UID_HEADER = "Impersonate-Uid"
GROUP_HEADER = "Impersonate-Group"
EXTRA_PREFIX = "Impersonate-Extra-"
# Removed once impersonation is done, so nothing downstream can tell it happened (as upstream).
HEADERS = HeaderNames.of((USER_HEADER, UID_HEADER, GROUP_HEADER), (EXTRA_PREFIX,))

AUTHENTICATION_GROUP = "authentication.k8s.io"
NODE_USERNAME_PREFIX = "system:node:"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
ASSOCIATED_NODE_KEYS = "authentication.kubernetes.io/associated-node-keys"
# At this many groups or extra values a constrained mode first tries one wildcard check.
_MANY_CHECKS = 4
_HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(f"^{_HTTP_PATH_FMT}\\Z")


@dataclass(frozen=True)
class WantedUser:
    """The raw impersonation headers (upstream's wantedUser, before any defaulting)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def go_repr(self) -> str:
        """Go's %#v of the *user.DefaultInfo, as the 400 message prints it."""
        groups = ("[]string{" + ", ".join(go_quote(g) for g in self.groups) + "}") if self.groups \
            else "[]string(nil)"
        if self.extra:
            extra = "map[string][]string{" + ", ".join(
                f"{go_quote(k)}:[]string{{{', '.join(go_quote(v) for v in self.extra[k])}}}"
                for k in sorted(self.extra)) + "}"
        else:
            extra = "map[string][]string(nil)"
        return (f"&user.DefaultInfo{{Name:{go_quote(self.name)}, UID:{go_quote(self.uid)}, Groups:{groups}, "
                f"Extra:{extra}}}")

    @property
    def only_username(self) -> bool:
        return not self.uid and not self.groups and not self.extra


def wanted_user(headers: Mapping[str, str]) -> WantedUser | None:
    """processImpersonationHeaders: None when no impersonation is asked for; 400 when a uid, group
    or extra is asked for without a (non-empty) user."""
    user_values = header_values(headers, USER_HEADER)
    uid_values = header_values(headers, UID_HEADER)
    name = user_values[0] if user_values else ""
    uid = uid_values[0] if uid_values else ""
    groups = tuple(header_values(headers, GROUP_HEADER))
    extra = extra_from_headers(headers, (EXTRA_PREFIX,))
    wanted = WantedUser(name, uid, groups, extra)
    if not name:
        if uid or groups or extra:
            err = errors.bad_request(f"requested {wanted.go_repr()} without impersonating a user name")
            err.headers["X-Content-Type-Options"] = "nosniff"
            raise err
        return None
    return wanted


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """serviceaccount.SplitUsername: (namespace, name) of a valid system:serviceaccount:<ns>:<name>."""
    if not username.startswith(SERVICE_ACCOUNT_USERNAME_PREFIX):
        return None
    parts = username[len(SERVICE_ACCOUNT_USERNAME_PREFIX):].split(":")
    if len(parts) != 2 or names.is_dns1123_label(parts[0]) or names.is_dns1123_subdomain(parts[1]):
        return None
    return parts[0], parts[1]


def node_name(username: str) -> str | None:
    """The node of a valid system:node:<name> username."""
    if not username.startswith(NODE_USERNAME_PREFIX):
        return None
    name = username[len(NODE_USERNAME_PREFIX):]
    return None if names.is_dns1123_subdomain(name) else name


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return SERVICE_ACCOUNT_GROUP, f"{SERVICE_ACCOUNT_GROUP}:{namespace}"


def validate_extra(extra: Mapping[str, tuple[str, ...]]) -> str | None:
    """The constrained modes' sanity checks on extra keys and values (upstream validateExtra)."""
    for key, values in extra.items():
        if not key:
            return "impersonating the empty string key in extra is not allowed"
        problems = _domain_prefixed_path_errors("extra.key", key)
        if problems:
            return f"impersonating an invalid key in extra is not allowed: {aggregate_message(problems)}"
        if key != key.lower():
            return f"impersonating a non-lowercase key in extra is not allowed: {go_quote(key)}"
        if "" in values:
            return "impersonating the empty string value in extra is not allowed"
    return None


def _domain_prefixed_path_errors(path: str, value: str) -> list[str]:
    """utilvalidation.IsDomainPrefixedPath, as field error strings."""
    def invalid(v: str, detail: str) -> str:
        cause = errors.field_invalid(path, v, detail)
        return f"{cause.field}: {cause.message}"

    host, sep, rest = value.partition("/")
    if not sep or not host or not rest:
        return [invalid(value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    out = [invalid(host, e) for e in names.is_dns1123_subdomain(host)]
    if not _HTTP_PATH_RE.match(rest):
        out.append(invalid(rest, names.regex_error("Invalid path", _HTTP_PATH_FMT)))
    return out


Check = Callable[[Attributes], Awaitable[None]]


def authorization_check(authorizer: Authorizer) -> Check:
    """checkAuthorization: anything but allow is a 403 naming the checked attributes, with the
    authorizer's reason (and evaluation error) appended."""
    async def check(attrs: Attributes) -> None:
        res = await authorizer.authorize(attrs)
        if res.decision is Decision.ALLOW:
            return
        msg = res.reason
        if res.error:
            msg = f"{res.error}: {res.reason}" if res.reason else res.error
        raise forbidden_message(attrs, msg)
    return check


class _Grant:
    """impersonationModeState: one check per impersonated value with this mode's verb, then the
    impersonated user as the request will see it."""

    def __init__(self, check: Check, verb: str, constrained: bool) -> None:
        self._check = check
        self.verb = verb
        self._constrained = constrained
        # Constrained modes check users and groups in authentication.k8s.io, legacy in the core group.
        self._group = AUTHENTICATION_GROUP if constrained else ""

    def _attrs(self, requestor: UserInfo, group: str, resource: str, name: str = "") -> Attributes:
        return Attributes(user=requestor, verb=self.verb, api_group=group, api_version="v1", resource=resource,
                          name=name, resource_request=True)

    async def grant(self, wanted: WantedUser, requestor: UserInfo) -> UserInfo:
        groups = wanted.groups
        user_attrs = self._attrs(requestor, self._group, "users", wanted.name)
        # The mode filters keep groups away from node and service-account usernames in constrained modes.
        node = node_name(wanted.name) if self._constrained else None
        if node is not None:
            user_attrs = replace(user_attrs, resource="nodes", name=node)
            groups = (NODES_GROUP,)
        sa = split_service_account_username(wanted.name)
        if sa is not None:
            user_attrs = replace(user_attrs, resource="serviceaccounts", namespace=sa[0], name=sa[1])
            if not wanted.groups:
                groups = service_account_groups(sa[0])
        await self._check(user_attrs)
        if wanted.uid:
            await self._check(self._attrs(requestor, AUTHENTICATION_GROUP, "uids", wanted.uid))
        await self._grant_groups(requestor, wanted.groups)
        await self._grant_extra(requestor, wanted.extra)
        if wanted.name == ANONYMOUS:
            if ALL_UNAUTHENTICATED not in groups:
                groups += (ALL_UNAUTHENTICATED,)
        elif ALL_UNAUTHENTICATED not in groups and ALL_AUTHENTICATED not in groups:
            groups += (ALL_AUTHENTICATED,)
        return UserInfo(name=wanted.name, uid=wanted.uid, groups=groups, extra=dict(wanted.extra))

    async def _grant_groups(self, requestor: UserInfo, groups: tuple[str, ...]) -> None:
        if not groups:
            return
        attrs = self._attrs(requestor, self._group, "groups")
        if self._constrained:
            if "" in groups:
                raise forbidden_message(attrs, "impersonating the empty string group is not allowed")
            if SYSTEM_PRIVILEGED_GROUP in groups:
                raise forbidden_message(replace(attrs, name=SYSTEM_PRIVILEGED_GROUP),
                                        "impersonating the system:masters group is not allowed")
            if len(groups) >= _MANY_CHECKS and await self._allowed(replace(attrs, name="*")):
                return
        for g in groups:
            await self._check(replace(attrs, name=g))

    async def _grant_extra(self, requestor: UserInfo, extra: Mapping[str, tuple[str, ...]]) -> None:
        if not extra:
            return
        attrs = self._attrs(requestor, AUTHENTICATION_GROUP, "userextras")
        if self._constrained:
            problem = validate_extra(extra)
            if problem:
                raise forbidden_message(attrs, problem)
            many = len(extra) >= _MANY_CHECKS or sum(len(v) for v in extra.values()) >= _MANY_CHECKS
            if many and await self._allowed(replace(attrs, subresource="*", name="*")):
                return
        for key, values in extra.items():
            for v in values:
                await self._check(replace(attrs, subresource=key, name=v))

    async def _allowed(self, attrs: Attributes) -> bool:
        try:
            await self._check(attrs)
        except StatusError:
            return False
        return True


class _Mode:
    """A constrained mode: applies only to some wanted users; `impersonate-on:<mode>:<verb>` on the
    request itself, then the `impersonate:<mode>` grant."""

    def __init__(self, check: Check, mode: str, applies: Callable[[WantedUser, UserInfo], bool]) -> None:
        self._check = check
        self._mode = mode
        self._applies = applies
        self._grant = _Grant(check, f"impersonate:{mode}", constrained=True)

    async def impersonate(self, wanted: WantedUser, attrs: Attributes) -> UserInfo | None:
        if not self._applies(wanted, attrs.user):
            return None
        await self._check(replace(attrs, verb=f"impersonate-on:{self._mode}:{attrs.verb}"))
        return await self._grant.grant(wanted, attrs.user)


class _LegacyMode:
    def __init__(self, check: Check) -> None:
        self._grant = _Grant(check, "impersonate", constrained=False)

    async def impersonate(self, wanted: WantedUser, attrs: Attributes) -> UserInfo | None:
        return await self._grant.grant(wanted, attrs.user)


def _associated_node_check(check: Check) -> Check:
    """The associated-node mode authorizes a requestor whose extra values are reduced to their keys,
    and its grant for any node name ("*"): the same answer holds for every node the requestor's
    pods may run on."""
    async def wrapped(attrs: Attributes) -> None:
        user = replace(attrs.user, extra={ASSOCIATED_NODE_KEYS: tuple(sorted(attrs.user.extra))})
        name = "*" if attrs.verb == "impersonate:associated-node" else attrs.name
        await check(replace(attrs, user=user, name=name))
    return wrapped


def _associated_with_node(wanted: WantedUser, requestor: UserInfo) -> bool:
    node = node_name(wanted.name)
    if not wanted.only_username or node is None:
        return False
    if split_service_account_username(requestor.name) is None:
        return False
    bound = requestor.extra.get(NODE_NAME_KEY, ())
    return len(bound) == 1 and bound[0] == node


def _arbitrary_node(wanted: WantedUser, requestor: UserInfo) -> bool:
    return wanted.only_username and node_name(wanted.name) is not None


def _service_account(wanted: WantedUser, requestor: UserInfo) -> bool:
    return wanted.only_username and split_service_account_username(wanted.name) is not None


def _user_info(wanted: WantedUser, requestor: UserInfo) -> bool:
    # Nodes and service accounts have their own modes; user-info is for every other user.
    return node_name(wanted.name) is None and split_service_account_username(wanted.name) is None


class Impersonator:
    def __init__(self, authorizer: Authorizer, remembered: int = 10_000) -> None:
        check = authorization_check(authorizer)
        self._modes: tuple[_Mode | _LegacyMode, ...] = (
            _Mode(_associated_node_check(check), "associated-node", _associated_with_node),
            _Mode(check, "arbitrary-node", _arbitrary_node),
            _Mode(check, "serviceaccount", _service_account),
            _Mode(check, "user-info", _user_info),
            _LegacyMode(check),
        )
        self._remembered = remembered
        # requestor name -> index of the mode that last succeeded for them (upstream's LRU of 10,000)
        self._last_mode: OrderedDict[str, int] = OrderedDict()

    async def impersonate(self, wanted: WantedUser, attrs: Attributes) -> UserInfo:
        """The impersonated user, or the first 403 met (StatusError). `attrs` describe the request
        as the requestor makes it."""
        requestor = attrs.user.name
        first_error: StatusError | None = None
        tried = self._last_mode.get(requestor)
        if tried is not None:
            self._last_mode.move_to_end(requestor)
            try:
                user = await self._modes[tried].impersonate(wanted, attrs)
            except StatusError as e:
                first_error = e
            else:
                if user is not None:
                    return user
        for i, mode in enumerate(self._modes):
            if i == tried:
                continue
            try:
                user = await mode.impersonate(wanted, attrs)
            except StatusError as e:
                first_error = first_error or e
                continue
            if user is None:
                continue
            self._remember(requestor, i)
            return user
        # The legacy mode always answers, so an error is all that can be left here.
        raise first_error or errors.internal("all impersonation modes failed")

    def _remember(self, requestor: str, index: int) -> None:
        self._last_mode[requestor] = index
        self._last_mode.move_to_end(requestor)
        while len(self._last_mode) > self._remembered:
            self._last_mode.popitem(last=False)
