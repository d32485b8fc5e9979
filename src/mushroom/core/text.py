"""Values quoted in error messages and logs, cut so one bad value cannot flood a screen."""

from __future__ import annotations

import re

SHOWN_CHARACTERS = 60
MAX_SHOWN_ERRORS = 20
"""Invalid values named in one message (a request's, a file's); then how many more."""


def cut(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def quoted(value: object) -> str:
    """``repr`` of a value's text as a user's file or request held it, cut."""
    text = str(value)
    return repr(text) if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS]!r}..."


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    r"""``text`` with each control character written as ``\xNN``: a ``%0A`` in a URL path
    wrote a forged line into the server log."""
    return CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)
