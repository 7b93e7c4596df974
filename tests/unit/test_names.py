"""Name primitives anchor at the true end of the string, as Go's regexps do (Python's `$` would
also match before a trailing newline), and the label-selector copies keep upstream's wording."""
from __future__ import annotations

from kubegate.api.selectors import label_value_errors, qualified_name_errors
from kubegate.api.validation import names


def test_trailing_newline_is_invalid() -> None:
    assert names.is_dns1123_label("web\n")
    assert names.is_dns1123_subdomain("example.com\n")
    assert names.is_qualified_name("app\n")
    assert names.is_label_value("v1\n")


def test_label_key_and_selector_wordings() -> None:
    assert names.is_qualified_name("a/b/c")[0].startswith("a valid label key must consist")
    assert qualified_name_errors("a/b/c")[0].startswith("a qualified name must consist")
    assert names.is_label_value("x" * 64) == ["must be no more than 63 bytes"]
    assert label_value_errors("x" * 64) == ["must be no more than 63 characters"]
    assert qualified_name_errors("Example.com/x") == [
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
        "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
        "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
