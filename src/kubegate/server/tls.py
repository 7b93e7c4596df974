"""The serving TLS context: TLS 1.2+, client certificates requested but optional.

kube-apiserver asks for a client certificate without verifying it in the handshake
(Go's tls.RequestClientCert) and leaves verification to the x509 authenticator, so a
certificate from an unknown CA gets a 401 Status rather than a failed handshake. Python's ssl
module cannot express "request, don't verify", so we install an accept-all verify callback on
the underlying SSL_CTX through ctypes. If that is unavailable the context falls back to
verifying optional certificates in the handshake (CERT_OPTIONAL), which is still secure.
"""
from __future__ import annotations

import ctypes
import logging
import ssl

log = logging.getLogger("kubegate.tls")

_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
# Kept at module level: OpenSSL holds a raw pointer to this callback for the process lifetime.
_accept_any = _VERIFY_CB(lambda preverify_ok, store_ctx: 1)
_SSL_VERIFY_PEER = 0x01
_PYOBJECT_HEAD = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)


def _request_client_cert(ctx: ssl.SSLContext) -> bool:
    try:
        import _ssl
        lib = ctypes.CDLL(_ssl.__file__)
        set_verify = lib.SSL_CTX_set_verify
    except (OSError, AttributeError, ImportError):
        return False
    set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CB]
    set_verify.restype = None
    # PySSLContext starts with PyObject_HEAD followed by the SSL_CTX pointer (CPython 3.11).
    ssl_ctx = ctypes.c_void_p.from_address(id(ctx) + _PYOBJECT_HEAD).value
    if not ssl_ctx:
        return False
    set_verify(ssl_ctx, _SSL_VERIFY_PEER, _accept_any)
    return True


def server_context(cert_file: str, key_file: str, client_ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.set_alpn_protocols(["http/1.1"])
    if client_ca_file:
        # The CA list is sent in the CertificateRequest so clients pick the right certificate.
        ctx.load_verify_locations(client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        if not _request_client_cert(ctx):
            log.warning("client certificates are verified during the TLS handshake "
                        "(no accept-all verify callback available)")
    return ctx


def reload_cert_chain(ctx: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    """Serve a new certificate from `ctx` without a restart.

    asyncio builds every connection's SSL object from the context when it accepts the connection,
    so replacing the context's certificate and key changes what new handshakes present while open
    connections keep theirs. The caller checks first that the key matches the certificate:
    load_cert_chain installs the certificate before it finds a mismatched key, which would leave the
    context unable to complete a handshake."""
    ctx.load_cert_chain(cert_file, key_file)
