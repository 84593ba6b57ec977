"""The one secret masker: everything that reaches a log, a report, an error or Parquet metadata
goes through `mask_secrets` first.

Why one: two maskers with different rules (one for URLs in text, one for database URLs) meant a
fix to one left the other leaking. The rules here cover, in one pass:
- the password of any URL (`scheme://user:password@host`), the user-info taken to end at the last
  ``@`` before the query string, so an unescaped ``@`` or ``/`` in a password is masked too;
- password-like settings written as `key=value` (DSNs, query strings such as ``?password=x``,
  environment assignments such as ``PGPASSWORD=x``) or `key: value` (YAML, dict reprs);
- any literal secret the caller knows (the parsed password, $PGPASSWORD), wherever it appears,
  because a driver may echo it in its own words.
Over-masking a rare odd string is better than leaking a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "***"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_SECRET_KEY = r"\w*(?:password|passwd|pwd|secret|token|api_?key|access_?key)"
_SECRET_ASSIGNMENT = re.compile(
    rf"(?i)\b({_SECRET_KEY})(\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s&;,'\"]+)"
)
_SECRET_COLON = re.compile(rf"(?i)([\"']?\b{_SECRET_KEY}[\"']?)(\s*:\s*)(\"[^\"]*\"|'[^']*'|[^\s&;,'\"}}]+)")
# Environment variables whose value is a password wherever it shows up.
SECRET_ENV = ("PGPASSWORD",)


def mask_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every password it holds replaced by ``***`` (see the module docstring).

    `secrets` are literal values to scrub as well (with their URL-decoded forms); the values of
    `SECRET_ENV` variables are always scrubbed.
    """
    text = str(text)
    known = {s for s in secrets if s} | {os.environ[k] for k in SECRET_ENV if os.environ.get(k)}
    for secret in sorted(known | {unquote(s) for s in known}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL.sub(_mask_one_url, text)
    text = _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _SECRET_COLON.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def _mask_one_url(match: re.Match[str]) -> str:
    url = match.group(0)
    scheme, rest = url.split("://", 1)
    cut = len(rest)
    for stop in ("?", "#"):
        if (i := rest.find(stop)) >= 0:
            cut = min(cut, i)
    at = rest.rfind("@", 0, cut)
    if at > 0 and (colon := rest.find(":", 0, at)) >= 0:
        rest = rest[: colon + 1] + MASK + rest[at:]
    return f"{scheme}://{rest}"


def mask_url(url: str) -> str:
    """A database URL as it may be shown: ``postgres://`` spelled ``postgresql://`` (what
    SQLAlchemy needs), password and password-like query parameters masked."""
    text = str(url)
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    return mask_secrets(text)


def reason(exc: BaseException, secrets: Iterable[str | None] = (), limit: int = 300) -> str:
    """A library's error message on one line, masked, short enough to sit inside ours.

    For a SQLAlchemy error the driver's own message (`exc.orig`, first two lines) is used; the
    statement and parameters SQLAlchemy appends are left out.
    """
    orig = getattr(exc, "orig", None)
    raw = "\n".join(str(orig).strip().split("\n")[0:2]) if orig is not None else str(exc)
    text = " ".join(raw.split()) or exc.__class__.__name__
    text = mask_secrets(text, secrets)
    return text if len(text) <= limit else text[: limit - 3] + "..."
