"""Upstream's name and identifier validators, returning upstream's exact error strings.

Two generations of helpers coexist upstream: k8s.io/apimachinery/pkg/util/validation says
"must be no more than N characters" while the newer api/validate/content package (label keys and
values) says "... N bytes". Both wordings are reproduced where upstream uses them.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable

NameValidator = Callable[[str, bool], list[str]]

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63
TOTAL_ANNOTATION_SIZE = 256 * 1024

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"

_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}\\Z")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}\\Z")
_LABEL_KEY_RE = re.compile(f"^{_LABEL_KEY_FMT}\\Z")
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}\\Z")
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}\\Z")
_PORT_NAME_CHARS_RE = re.compile("^[-a-z0-9]+\\Z")
_HAS_LETTER_RE = re.compile("[a-z]")

_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                      "and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                          "'-' or '.', and must start and end with an alphanumeric character")
_LABEL_KEY_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                  "alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                    "'.', and must start and end with an alphanumeric character")
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: the odd double space before `or` is upstream's."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, ex in enumerate(examples):
        if i:
            out += " or "
        out += f"'{ex}', "
    return out + f"regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def max_len_bytes_error(n: int) -> str:
    return f"must be no more than {n} bytes"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def _blen(s: str) -> int:
    # Go measures strings in bytes.
    return len(s.encode())


def is_dns1123_label(value: str) -> list[str]:
    # A match means ASCII only, so len() is the byte length: a valid label costs one match.
    if len(value) <= DNS1123_LABEL_MAX and _DNS1123_LABEL_RE.match(value):
        return []
    errs: list[str] = []
    if _blen(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def _max_len(n: int, in_bytes: bool) -> str:
    return max_len_bytes_error(n) if in_bytes else max_len_error(n)


def is_dns1123_subdomain(value: str, *, bytes_message: bool = False) -> list[str]:
    """validation.IsDNS1123Subdomain; the content package's copy (label-key prefixes) reports the
    length in bytes."""
    # A match means ASCII only, so len() is the byte length: a valid subdomain costs one match.
    if len(value) <= DNS1123_SUBDOMAIN_MAX and _DNS1123_SUBDOMAIN_RE.match(value):
        return []
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(_max_len(DNS1123_SUBDOMAIN_MAX, bytes_message))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_qualified_name(value: str, *, noun: str = "a valid label key", bytes_message: bool = True) -> list[str]:
    """content.IsLabelKey (the default), or apimachinery's IsQualifiedName (noun "a qualified
    name", lengths in characters, as label selectors report): an optional DNS-subdomain prefix,
    '/', and a 63-byte name."""
    return list(qualified_name_errors(value, noun, bytes_message))


@functools.lru_cache(maxsize=4096)  # label and toleration keys repeat on every write
def qualified_name_errors(value: str, noun: str = "a valid label key", bytes_message: bool = True) -> tuple[str, ...]:
    """is_qualified_name's cached, shared answer (a tuple: do not change it); hot paths test it for emptiness."""
    return tuple(_qualified_name_checks(value, noun, bytes_message))


def _qualified_name_checks(value: str, noun: str, bytes_message: bool) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix, bytes_message=bytes_message))
    else:
        return [noun + " " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif _blen(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + _max_len(QUALIFIED_NAME_MAX, bytes_message))
    if not _LABEL_KEY_RE.match(name):
        errs.append("name part " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_label_value(value: str, *, bytes_message: bool = True) -> list[str]:
    errs: list[str] = []
    if _blen(value) > LABEL_VALUE_MAX:
        errs.append(_max_len(LABEL_VALUE_MAX, bytes_message))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _CONFIG_KEY_RE.match(value):
        errs.append(regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    return errs + _chdir_prefix(value)


def is_relaxed_env_var_name(value: str) -> list[str]:
    """The RelaxedEnvironmentVariableValidation form (GA, on by default): printable ASCII except '='."""
    errs: list[str] = []
    if not value:
        errs.append("environment variable name must be non-empty")
    if any(ord(c) > 126 or ord(c) < 32 or c == "=" for c in value):
        errs.append("a valid environment variable name must consist only of printable ASCII characters "
                    "other than '='")
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    """IANA_SVC_NAME: at most 15 characters of [-a-z0-9], at least one letter, no '--', no edge hyphen."""
    errs: list[str] = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARS_RE.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _HAS_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _mask_trailing_dash(name: str) -> str:
    # A generateName prefix may end in '-': the random suffix follows it.
    if len(name) > 1 and name.endswith("-"):
        return name[:-1] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def path_segment_name(name: str, prefix: bool) -> list[str]:
    """path.ValidatePathSegmentName: names that must survive as one URL path segment (RBAC)."""
    errs: list[str] = []
    if not prefix:
        for bad in (".", ".."):
            if name == bad:
                errs.append(f"may not be '{bad}'")
    for bad in ("/", "%"):
        if bad in name:
            errs.append(f"may not contain '{bad}'")
    return errs


def any_name(name: str, prefix: bool) -> list[str]:
    """Kinds such as CertificateSigningRequest accept any name."""
    return []
