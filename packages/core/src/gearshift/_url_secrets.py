"""Masking the credentials a URL may carry, wherever the URL is shown (reprs, errors, logs, records).

A URL's password sits in its user info (`redis://:secret@host`, `https://user:secret@gateway/v1`)
or in its query (`?password=secret`). People paste passwords unencoded, with spaces, `#`, `?`, `/`
or `@` in them, and then no URL parser finds where the password ends; so masking never parses:

- the user info runs from `://` to the last `@` of the URL, whatever it holds. Its user name is kept
  when a `:` follows it (`user:***@host`); user info without a `:` may be a token and is masked whole.
- a query value named like a credential (`password=`, `token=`...) is masked up to the next
  `&name=` or the end (a `#` may be part of it).

An `@` in a query (rare in a store or base URL) makes more of the URL masked than needed, never less.
In free text, where a URL's end is unknown, `mask_text` masks every URL it finds the same way, and
first replaces the known URLs and their passwords (raw and percent-decoded) wholesale.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

__all__ = ["ENCODE_HINT", "MASK", "mask_text", "mask_url", "unencoded_userinfo", "url_secrets"]

MASK = "***"
ENCODE_HINT = (
    "if the password holds any of / ? # @ : % or a space, percent-encode them (%2F %3F %23 %40 %3A %25 %20)"
)
"""How to write a URL whose password holds characters that end a URL's host part."""

_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*")
_CREDENTIAL_NAMES = r"password|passwd|pwd|pass|secret|token|access_token|api_key|apikey|api-key|key|auth"
# In one URL a credential's value ends only where the next parameter starts; in free text, also at a space.
_QUERY_CREDENTIAL = re.compile(rf"([?&;](?:{_CREDENTIAL_NAMES})=)(.*?)(?=&[\w.-]+=|$)", re.IGNORECASE)
_TEXT_QUERY_CREDENTIAL = re.compile(rf"([?&;](?:{_CREDENTIAL_NAMES})=)[^&\s]*", re.IGNORECASE)
# A URL in free text with user info: the user info may hold `@`, never whitespace.
_TEXT_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)(\S*)@")


def mask_url(url: str) -> str:
    """`url` with its password masked: `redis://:***@host:6379/0`, `https://user:***@host/v1`."""
    # The query first: an `@` in a query password would otherwise pass for the end of a user info.
    url = _QUERY_CREDENTIAL.sub(rf"\g<1>{MASK}", url)
    scheme, sep, rest = url.partition("://")
    if sep and _SCHEME.fullmatch(scheme):
        at = rest.rfind("@")
        if at >= 0:
            rest = f"{_masked_userinfo(rest[:at])}@{rest[at + 1 :]}"
        url = f"{scheme}://{rest}"
    return url


def unencoded_userinfo(url: str) -> bool:
    """Whether a raw `/`, `?` or `#` in the user info ends the host part early (`redis://:a/b@host`).

    Such a URL parses to a wrong host or port, and may be shown in parsers' errors in full.
    """
    _, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return False
    try:
        return "@" not in urlsplit(url).netloc
    except ValueError:
        return True


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credentials in `url` as they may show up elsewhere: raw, and percent-decoded as sent."""
    if not url:
        return ()
    found: list[str] = []
    _, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo = rest[: rest.rfind("@")]
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    found.extend(match.group(2) for match in _QUERY_CREDENTIAL.finditer(url))
    decoded = [unquote(secret) for secret in found]
    return tuple(dict.fromkeys(secret for secret in (*found, *decoded) if secret))


def mask_text(text: str, urls: Iterable[str | None] = ()) -> str:
    """`text` with the known `urls` masked and their secrets replaced, then every URL in it masked."""
    for url in urls:
        if not url:
            continue
        text = text.replace(url, mask_url(url))
        # Longest first: a decoded password may contain its raw form, or the other way round.
        for secret in sorted(url_secrets(url), key=len, reverse=True):
            if len(secret) >= 3:  # shorter pieces are too common to replace in prose
                text = text.replace(secret, MASK)
    text = _TEXT_QUERY_CREDENTIAL.sub(rf"\g<1>{MASK}", text)
    return _TEXT_USERINFO.sub(lambda m: f"{m.group(1)}{_masked_userinfo(m.group(2))}@", text)


def _masked_userinfo(userinfo: str) -> str:
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{MASK}" if colon else MASK
