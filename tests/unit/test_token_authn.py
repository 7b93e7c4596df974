"""Token-based authentication, pure parts: the token union and cache, bearer parsing, the static
token and password files (and Go's CSV reading behind them), bootstrap tokens, the WebSocket
protocol token, and the token cleaner's decision."""
from __future__ import annotations

import asyncio
import base64
import logging
from asyncio import run
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from kubegate.api import errors
from kubegate.api.registry import Decoded
from kubegate.authn import AuthenticationError, AuthRequest, AuthResult
from kubegate.authn.basicauth import BasicAuthenticator, basic_credentials, parse_password_file
from kubegate.authn.bootstrap_token import (
    BootstrapTokenAuthenticator,
    authenticate_secret,
    expiration,
    parse_token,
)
from kubegate.authn.gocsv import CSVError, records
from kubegate.authn.token import (
    EXTRA_SPACE_WARNING,
    AudienceAgnostic,
    BearerAuthenticator,
    TokenCache,
    TokenUnion,
    bearer_token,
)
from kubegate.authn.tokenfile import StaticTokenAuthenticator, parse_token_file, read_auth_file
from kubegate.authn.user import UserInfo
from kubegate.authn.websocket_token import WebSocketProtocolAuthenticator, is_websocket, protocol_token
from kubegate.controllers.tokencleaner import TokenCleaner
from kubegate.server.config import ConfigError


@dataclass
class FixedToken:
    """A token authenticator that knows one token, or always fails with `error`."""
    token: str = ""
    name: str = "u"
    error: str | None = None
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        self.calls.append((token, audiences))
        if self.error:
            raise AuthenticationError(self.error)
        return AuthResult(UserInfo(self.name)) if token == self.token else None


# --- TokenUnion ----------------------------------------------------------------------------------

def test_union_first_success_wins_and_stops() -> None:
    later = FixedToken("t", "later")
    result = run(TokenUnion([FixedToken("x"), FixedToken("t", "first"), later]).authenticate_token("t", ()))
    assert result is not None and result.user.name == "first"
    assert later.calls == []


def test_union_errors_are_collected_unless_something_succeeds() -> None:
    ok = run(TokenUnion([FixedToken(error="expired"), FixedToken("t", "b")]).authenticate_token("t", ()))
    assert ok is not None and ok.user.name == "b"
    with pytest.raises(AuthenticationError, match=r"^\[expired, bad signature\]$"):
        run(TokenUnion([FixedToken(error="expired"), FixedToken(), FixedToken(error="bad signature")])
            .authenticate_token("t", ()))
    assert run(TokenUnion([FixedToken("x"), FixedToken("y")]).authenticate_token("t", ())) is None


# --- TokenCache ----------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_remembers_success_for_ttl_only() -> None:
    inner, clock = FixedToken("t"), Clock()
    cache = TokenCache(inner, ttl=10.0, clock=clock)
    for _ in range(3):
        assert run(cache.authenticate_token("t", ("api",))) is not None
    assert len(inner.calls) == 1
    clock.now += 9.9
    run(cache.authenticate_token("t", ("api",)))
    assert len(inner.calls) == 1
    clock.now += 0.2
    run(cache.authenticate_token("t", ("api",)))
    assert len(inner.calls) == 2


def test_cache_does_not_remember_failures_or_errors() -> None:
    inner = FixedToken("t")
    cache = TokenCache(inner, clock=Clock())
    assert run(cache.authenticate_token("other", ())) is None
    assert run(cache.authenticate_token("other", ())) is None
    assert len(inner.calls) == 2
    failing = FixedToken(error="expired")
    cache = TokenCache(failing, clock=Clock())
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            run(cache.authenticate_token("t", ()))
    assert len(failing.calls) == 2


def test_cache_key_includes_audiences() -> None:
    inner = FixedToken("t")
    cache = TokenCache(inner, clock=Clock())
    run(cache.authenticate_token("t", ("api",)))
    run(cache.authenticate_token("t", ("vault",)))
    run(cache.authenticate_token("t", ("api", "vault")))
    run(cache.authenticate_token("t", ("api",)))
    assert [a for _, a in inner.calls] == [("api",), ("vault",), ("api", "vault")]


def test_cache_is_bounded_and_evicts_the_oldest() -> None:
    class Everyone:
        def __init__(self) -> None:
            self.calls: list[str] = []

        async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult:
            self.calls.append(token)
            return AuthResult(UserInfo(token))

    inner = Everyone()
    cache = TokenCache(inner, size=2, clock=Clock())
    for t in ("a", "b", "c"):
        run(cache.authenticate_token(t, ()))
    run(cache.authenticate_token("c", ()))
    run(cache.authenticate_token("b", ()))
    assert inner.calls == ["a", "b", "c"]
    run(cache.authenticate_token("a", ()))  # evicted
    assert inner.calls == ["a", "b", "c", "a"]


# --- AudienceAgnostic ----------------------------------------------------------------------------

def test_audience_agnostic_tokens_are_for_the_api_audiences_only() -> None:
    inner = FixedToken("t")
    wrapped = AudienceAgnostic(inner, ("https://kubernetes.default.svc", "api"))
    res = run(wrapped.authenticate_token("t", ("vault", "api", "https://kubernetes.default.svc")))
    assert res is not None and res.audiences == ("api", "https://kubernetes.default.svc")
    assert run(wrapped.authenticate_token("t", ("vault",))) is None
    assert len(inner.calls) == 1  # never asked when no audience matches
    res = run(wrapped.authenticate_token("t", ()))  # no audiences configured: passed through
    assert res is not None and res.audiences == ()
    assert run(wrapped.authenticate_token("nope", ("api",))) is None


# --- bearer parsing ------------------------------------------------------------------------------

@pytest.mark.parametrize("header,token,warn", [
    ("Bearer abc", "abc", False),
    ("bearer abc", "abc", False),
    ("BEARER abc", "abc", False),
    ("  Bearer abc  ", "abc", False),
    ("Bearer abc def", "abc", False),
    ("Bearer  abc", None, True),      # two spaces: ignored with upstream's warning
    ("Bearer ", None, False),         # trimmed to "Bearer"
    ("Bearer", None, False),
    ("", None, False),
    ("Basic abc", None, False),
    ("Bearer\tabc", None, False),
    ("Token abc", None, False),
])
def test_bearer_token(header: str, token: str | None, warn: bool) -> None:
    assert bearer_token(header) == (token, warn)


def test_bearer_authenticator_warns_on_extra_space_and_rejects_unknown_tokens() -> None:
    bearer = BearerAuthenticator(FixedToken("good"), ("api",))
    req = AuthRequest(headers={"Authorization": "Bearer  good"})
    assert run(bearer.authenticate(req)) is None
    assert req.warnings == [EXTRA_SPACE_WARNING]
    assert EXTRA_SPACE_WARNING == ("the provided Authorization header contains extra space before the bearer "
                                   "token, and is ignored")
    with pytest.raises(AuthenticationError, match="^invalid bearer token$"):
        run(bearer.authenticate(AuthRequest(headers={"Authorization": "Bearer bad"})))
    ok = AuthRequest(headers={"Authorization": "Bearer good"})
    assert run(bearer.authenticate(ok)) is not None and ok.warnings == []


# --- Go's CSV ------------------------------------------------------------------------------------

def test_csv_reads_like_go() -> None:
    data = b'tok,alice,1002,"developers,qa"\n\n\r\nt2,bob,1003\r\n"multi\nline",x,"a ""q"""\nlast,no,newline'
    assert list(records(data)) == [["tok", "alice", "1002", "developers,qa"], ["t2", "bob", "1003"],
                                    ["multi\nline", "x", 'a "q"'], ["last", "no", "newline"]]
    assert list(records(b" a , b ,c")) == [[" a ", " b ", "c"]]  # spaces are data


@pytest.mark.parametrize("data,message", [
    (b'a"b,c,d', 'parse error on line 1, column 2: bare " in non-quoted-field'),
    (b'a,"b"c,d', 'parse error on line 1, column 5: extraneous or missing " in quoted-field'),
    (b'ok,1,2\na,"b\nc', 'record on line 2; parse error on line 3, column 2: extraneous or missing " in quoted-field'),
    (b'x\n"abc', 'parse error on line 2, column 5: extraneous or missing " in quoted-field'),
])
def test_csv_errors_carry_gos_text(data: bytes, message: str) -> None:
    with pytest.raises(CSVError) as e:
        list(records(data))
    assert str(e.value) == message


# --- static token file ---------------------------------------------------------------------------

def test_token_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('admin-static-token,token-admin,1001,system:masters\n'
                    'alice-static-token,alice,1002,"developers,qa",ignored\n'
                    'bob-static-token,bob,1003\n'
                    ',nobody,1004\n'
                    'dup,first,1\n'
                    'dup,second,2\n'
                    'empty-groups,carol,1005,\n')
    with caplog.at_level(logging.WARNING):
        auth = StaticTokenAuthenticator.from_file(str(path))
    assert f"empty token has been found in token file '{path}', record number '4'" in caplog.text
    assert f"duplicate token has been found in token file '{path}', record number '6'" in caplog.text
    assert "dup" not in caplog.text.replace("duplicate", "")  # no token in the log

    def who(token: str) -> UserInfo | None:
        r = run(auth.authenticate_token(token, ()))
        return None if r is None else r.user
    assert who("admin-static-token") == UserInfo("token-admin", "1001", ("system:masters",))
    assert who("alice-static-token") == UserInfo("alice", "1002", ("developers", "qa"))
    assert who("bob-static-token") == UserInfo("bob", "1003", ())
    assert who("dup") == UserInfo("second", "2", ())
    assert who("empty-groups") == UserInfo("carol", "1005", ("",))  # strings.Split("", ",") == [""]
    assert who("") is None and who("alice-static-toke") is None and who("alice-static-token ") is None


def test_token_file_errors_stop_the_server(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("t1,alice,1\nt2,bob\nbroken\"quote,x,y\n")
    with pytest.raises(ConfigError) as e:
        StaticTokenAuthenticator.from_file(str(path))
    assert str(e.value) == (f"token file '{path}' must have at least 3 columns (token, user name, user uid), "
                            "found 2")
    path.write_text('t1,alice,1\nt2,"bob\n')
    with pytest.raises(ConfigError) as e:
        StaticTokenAuthenticator.from_file(str(path))
    assert str(e.value) == 'parse error on line 2, column 9: extraneous or missing " in quoted-field'
    with pytest.raises(ConfigError) as e:
        StaticTokenAuthenticator.from_file(str(tmp_path / "missing.csv"))
    assert str(e.value) == f"open {tmp_path / 'missing.csv'}: no such file or directory"
    with pytest.raises(ConfigError, match="^read .*: is a directory$"):
        StaticTokenAuthenticator.from_file(str(tmp_path))
    assert parse_token_file("x", []) == {}


# --- basic auth ----------------------------------------------------------------------------------

def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials_parsing() -> None:
    assert basic_credentials(_basic("alice", "pa:ss")) == ("alice", "pa:ss")  # split at the first colon
    assert basic_credentials("basic " + _basic("a", "b")[6:]) == ("a", "b")
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials("") is None
    assert basic_credentials("Basic") is None
    for bad in ("Basic !!!notbase64", "Basic YWxpY2U",  # no padding
                "Basic " + base64.b64encode(b"no-colon").decode(), "Basic ü"):
        with pytest.raises(AuthenticationError, match="^invalid basic auth header$"):
            basic_credentials(bad)


def test_basic_authenticator(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "passwords.csv"
    path.write_text('s3cret,alice,1002,"developers,qa"\n,nopass,9\nold,bob,1\nnew,bob,2\n')
    with caplog.at_level(logging.WARNING):
        auth = BasicAuthenticator.from_file(str(path))
    assert f"empty password has been found in password file '{path}', record number '2'" in caplog.text
    assert f"duplicate username 'bob' has been found in password file '{path}', record number '4'" in caplog.text
    assert "s3cret" not in caplog.text

    def attempt(header: str) -> AuthResult | None:
        return run(auth.authenticate(AuthRequest(headers={"Authorization": header})))
    res = attempt(_basic("alice", "s3cret"))
    assert res is not None and res.user == UserInfo("alice", "1002", ("developers", "qa"))
    res = attempt(_basic("bob", "new"))
    assert res is not None and res.user.uid == "2"
    for user, password in (("alice", "wrong"), ("alice", ""), ("bob", "old"), ("nopass", ""), ("mallory", "x")):
        with pytest.raises(AuthenticationError, match="^invalid username/password combination$"):
            attempt(_basic(user, password))
    assert attempt("Bearer abc") is None
    assert run(auth.authenticate(AuthRequest(headers={}))) is None


def test_password_file_needs_three_columns() -> None:
    with pytest.raises(ConfigError, match=r"^password file 'p' must have at least 3 columns "
                                          r"\(password, user name, user uid\), found 1$"):
        parse_password_file("p", [["only"]])


# --- bootstrap tokens ----------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)


def bootstrap_secret(token_id: str = "abcdef", token_secret: str = "0123456789abcdef",
                     **data: str | None) -> dict[str, Any]:
    values = {"token-id": token_id, "token-secret": token_secret, "usage-bootstrap-authentication": "true", **data}
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system", "uid": "u1"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items() if v is not None}}


@pytest.mark.parametrize("token,parsed", [
    ("abcdef.0123456789abcdef", ("abcdef", "0123456789abcdef")),
    ("ABCDEF.0123456789abcdef", None),
    ("abcdef.0123456789abcde", None),
    ("abcdef.0123456789abcdef\n", None),
    ("abcdef:0123456789abcdef", None),
    ("abcdefg.0123456789abcdef", None),
])
def test_parse_token(token: str, parsed: tuple[str, str] | None) -> None:
    assert parse_token(token) == parsed


def test_bootstrap_token_user() -> None:
    user = authenticate_secret(bootstrap_secret(**{"auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token,"
                                                   "system:bootstrappers:a,system:bootstrappers:a"}),
                               "abcdef", "0123456789abcdef", NOW)
    assert user == UserInfo("system:bootstrap:abcdef", "",
                            ("system:bootstrappers", "system:bootstrappers:a",
                             "system:bootstrappers:kubeadm:default-node-token"))
    plain = authenticate_secret(bootstrap_secret(), "abcdef", "0123456789abcdef", NOW)
    assert plain == UserInfo("system:bootstrap:abcdef", groups=("system:bootstrappers",))


@pytest.mark.parametrize("change", [
    {"token_secret": "fedcba9876543210"},
    {"token_id": "zzzzzz"},
    {"usage-bootstrap-authentication": "True"},
    {"usage-bootstrap-authentication": None},
    {"expiration": "2026-11-23T12:00:00Z"},            # exactly now counts as expired
    {"expiration": "2026-11-23T11:59:59Z"},
    {"expiration": "2026-11-23T13:30:00+02:00"},       # 11:30Z
    {"expiration": "not-a-time"},                      # unparseable counts as expired
    {"expiration": "2030-01-01"},
    {"expiration": "2030-01-01T00:00:00"},             # RFC 3339 needs an offset
    {"auth-extra-groups": "system:bootstrappers:ok,developers"},
    {"auth-extra-groups": "system:bootstrappers:"},
    {"auth-extra-groups": "system:bootstrappers:Upper"},
])
def test_bootstrap_token_rejections(change: dict[str, Any]) -> None:
    kwargs = {k: v for k, v in change.items() if k in ("token_id", "token_secret")}
    data = {k: v for k, v in change.items() if k not in kwargs}
    secret = bootstrap_secret(**kwargs, **data)  # a None value leaves the key out
    assert authenticate_secret(secret, "abcdef", "0123456789abcdef", NOW) is None


def test_bootstrap_token_secret_shape() -> None:
    ok = bootstrap_secret(expiration="2026-11-23T12:00:01.5+00:00")
    assert authenticate_secret(ok, "abcdef", "0123456789abcdef", NOW) is not None
    wrong_type = {**ok, "type": "Opaque"}
    assert authenticate_secret(wrong_type, "abcdef", "0123456789abcdef", NOW) is None
    deleting = {**ok, "metadata": {**ok["metadata"], "deletionTimestamp": "2026-11-23T11:00:00Z"}}
    assert authenticate_secret(deleting, "abcdef", "0123456789abcdef", NOW) is None
    assert authenticate_secret({**ok, "data": {}}, "abcdef", "0123456789abcdef", NOW) is None
    assert authenticate_secret(None, "abcdef", "0123456789abcdef", NOW) is None


def test_expiration() -> None:
    assert expiration(bootstrap_secret(), NOW) == (0.0, False)
    assert expiration(bootstrap_secret(expiration="2026-11-23T12:01:00Z"), NOW) == (60.0, False)
    assert expiration(bootstrap_secret(expiration="2026-11-23T12:00:00Z"), NOW) == (0.0, True)
    assert expiration(bootstrap_secret(expiration="garbage"), NOW) == (0.0, True)
    assert expiration(bootstrap_secret(expiration="2026-11-23T25:00:00Z"), NOW) == (0.0, True)


def test_bootstrap_authenticator_reads_the_named_secret() -> None:
    asked: list[str] = []
    secret = bootstrap_secret()

    def lookup(name: str) -> dict[str, Any] | None:
        asked.append(name)
        return secret if name == "bootstrap-token-abcdef" else None
    auth = BootstrapTokenAuthenticator(lookup, clock=lambda: NOW)
    res = run(auth.authenticate_token("abcdef.0123456789abcdef", ()))
    assert res is not None and res.user.name == "system:bootstrap:abcdef"
    assert run(auth.authenticate_token("abcdef.0123456789abcdee", ())) is None
    assert run(auth.authenticate_token("qwerty.0123456789abcdef", ())) is None
    assert run(auth.authenticate_token("not-a-bootstrap-token", ())) is None
    assert asked == ["bootstrap-token-abcdef"] * 2 + ["bootstrap-token-qwerty"]


# --- WebSocket protocol token --------------------------------------------------------------------

def _proto(token: str) -> str:
    return "base64url.bearer.authorization.k8s.io." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


WS = {"Upgrade": "websocket", "Connection": "Upgrade"}


def test_is_websocket() -> None:
    assert is_websocket(WS)
    assert is_websocket({"Upgrade": "WebSocket", "Connection": "keep-alive, Upgrade"})
    assert not is_websocket({"Upgrade": "websocket", "Connection": "keep-alive"})
    assert not is_websocket({"Upgrade": "h2c", "Connection": "Upgrade"})
    assert not is_websocket({})


def test_protocol_token() -> None:
    assert protocol_token([f"{_proto('my-token')}, channel.k8s.io"]) == "my-token"
    assert protocol_token(["v4.channel.k8s.io", _proto("é-token")]) == "é-token"
    assert protocol_token(["channel.k8s.io"]) is None
    assert protocol_token([]) is None
    cases = [
        ([_proto("t")], "missing additional subprotocol"),
        ([f"{_proto('a')},{_proto('b')},x"], "multiple base64.bearer.authorization tokens specified"),
        (["base64url.bearer.authorization.k8s.io.dGVzdA==,x"], "invalid base64.bearer.authorization token encoding"),
        (["base64url.bearer.authorization.k8s.io.a+b/,x"], "invalid base64.bearer.authorization token encoding"),
        (["base64url.bearer.authorization.k8s.io." + base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("=") + ",x"],
         "invalid base64.bearer.authorization token"),
    ]
    for values, message in cases:
        with pytest.raises(AuthenticationError) as e:
            protocol_token(values)
        assert str(e.value) == message


def test_websocket_authenticator() -> None:
    inner = FixedToken("good")
    auth = WebSocketProtocolAuthenticator(inner, ("api",))
    res = run(auth.authenticate(AuthRequest(headers={**WS, "Sec-WebSocket-Protocol": f"{_proto('good')},x"})))
    assert res is not None and inner.calls == [("good", ("api",))]
    with pytest.raises(AuthenticationError, match="^invalid bearer token$"):
        run(auth.authenticate(AuthRequest(headers={**WS, "Sec-WebSocket-Protocol": f"{_proto('bad')},x"})))
    # not a WebSocket handshake: the protocol header is not looked at
    assert run(auth.authenticate(AuthRequest(headers={"Sec-WebSocket-Protocol": f"{_proto('good')},x"}))) is None


# --- token cleaner -------------------------------------------------------------------------------

class FakeSecrets:
    """The two registry calls the cleaner makes (sync() is the decision under test; no informer runs)."""

    cache = None

    def __init__(self, objs: dict[str, dict[str, Any]], fail: errors.StatusError | None = None) -> None:
        self.objs = objs
        self.fail = fail
        self.deleted: list[tuple[str, dict[str, Any]]] = []

    def get_cached(self, namespace: str, name: str) -> Decoded | None:
        obj = self.objs.get(name) if namespace == "kube-system" else None
        return None if obj is None else Decoded(obj)

    async def delete(self, namespace: str, name: str, *, options: dict[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        self.deleted.append((name, options))


def _cleaner(secrets: FakeSecrets, now: datetime) -> TokenCleaner:
    return TokenCleaner(secrets, clock=lambda: now)  # type: ignore[arg-type]


def test_cleaner_deletes_expired_with_uid_precondition_and_waits_for_the_rest() -> None:
    async def scenario() -> tuple[FakeSecrets, TokenCleaner]:
        secrets = FakeSecrets({
            "bootstrap-token-aaaaaa": bootstrap_secret("aaaaaa", expiration="2026-11-23T11:00:00Z"),
            "bootstrap-token-bbbbbb": bootstrap_secret("bbbbbb", expiration="2026-11-23T12:10:00Z"),
            "bootstrap-token-cccccc": bootstrap_secret("cccccc"),
            "bootstrap-token-dddddd": {**bootstrap_secret("dddddd", expiration="garbage"), "type": "Opaque"},
        })
        cleaner = _cleaner(secrets, NOW)
        for name in secrets.objs:
            await cleaner.sync(name)
        await cleaner.sync("bootstrap-token-gone00")
        return secrets, cleaner
    secrets, cleaner = asyncio.run(scenario())
    assert secrets.deleted == [("bootstrap-token-aaaaaa", {"preconditions": {"uid": "u1"}})]
    assert set(cleaner._timers) == {"bootstrap-token-bbbbbb"}  # re-checked when it expires


def test_cleaner_ignores_conflict_and_not_found_but_not_other_errors() -> None:
    expired = {"bootstrap-token-aaaaaa": bootstrap_secret("aaaaaa", expiration="2020-01-01T00:00:00Z")}
    for code in (404, 409):
        asyncio.run(_cleaner(FakeSecrets(expired, errors.StatusError(code, "x", "x")), NOW).sync("bootstrap-token-aaaaaa"))
    with pytest.raises(errors.StatusError):
        asyncio.run(_cleaner(FakeSecrets(expired, errors.StatusError(500, "x", "x")), NOW).sync("bootstrap-token-aaaaaa"))


def test_read_auth_file_is_lazy_like_gos_reader(tmp_path: Path) -> None:
    # a short record before a malformed one: the column error wins, as Go reads record by record
    path = tmp_path / "f.csv"
    path.write_text('a,b\nx,"y\n')
    with pytest.raises(ConfigError, match="must have at least 3 columns"):
        parse_token_file(str(path), read_auth_file(str(path)))
