"""Secret masking: every known secret and every URL's credentials in a text become ``***``."""
from __future__ import annotations

import re
from typing import Iterable

_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^\s;]*)@")  # up to the last @: passwords hold @ too


def _mask_userinfo(match: re.Match) -> str:
    user, sep, secret = match.group(2).partition(":")
    if secret.startswith("<") and secret.endswith(">"):  # a placeholder in a fix text, not a password
        return match.group(0)
    # Without a ':' the part before '@' is a user name to Redis, but people put passwords there.
    return f"{match.group(1)}{user}:***@" if sep else f"{match.group(1)}***@"


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every URL's credentials replaced by ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL_USERINFO.sub(_mask_userinfo, text)
