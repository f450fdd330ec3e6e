"""The SASL strings that carry an OAuth2 access token in SMTP AUTH.

Two mechanisms, both sent as an initial response (RFC 4954 section 4):

- ``OAUTHBEARER`` (RFC 7628), the standard one: a GS2 header naming the user
  (``n,a=USER,``), then ``host``, ``port`` and ``auth=Bearer TOKEN``, each
  ended by ``%x01``, the whole ended by one more ``%x01`` (section 3.1).
- ``XOAUTH2``, Google's older one that Microsoft also speaks:
  ``user=USER^Aauth=Bearer TOKEN^A^A``.

``OAUTHBEARER`` is preferred when the server offers both. A server refusing
a token first sends a 334 challenge holding a JSON error (RFC 7628 section
3.2.2, and the same for XOAUTH2); the client must answer it -- ``%x01`` for
OAUTHBEARER (section 3.2.3), an empty line for XOAUTH2 -- and then gets the
final 5xx. ``error_status`` reads the challenge's ``status`` for the
transcript and the person.

Pure functions, no I/O. aiosmtplib speaks XOAUTH2 only; these strings are
ours so that the session opening (``relay.smtp.opening``) drives both alike.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

#: In order of preference.
MECHANISMS = ("OAUTHBEARER", "XOAUTH2")


def choose_mechanism(offered: Sequence[str]) -> str | None:
    """The mechanism to use of those the server offered (upper case), or None."""
    for mechanism in MECHANISMS:
        if mechanism in offered:
            return mechanism
    return None


def initial_response(mechanism: str, user: str, token: str, host: str, port: int) -> str:
    """The base64 initial response of ``mechanism`` for ``user`` and ``token``."""
    if mechanism == "OAUTHBEARER":
        raw = oauthbearer(user, token, host, port)
    elif mechanism == "XOAUTH2":
        raw = xoauth2(user, token)
    else:
        raise ValueError(f"not an OAuth2 mechanism: {mechanism}")
    return base64.b64encode(raw).decode("ascii")


def oauthbearer(user: str, token: str, host: str, port: int) -> bytes:
    """RFC 7628 section 3.1's client response (before base64)."""
    _refuse_separators(user, token, host)
    # RFC 5801 section 4: in a saslname "," is "=2C" and "=" is "=3D".
    saslname = user.replace("=", "=3D").replace(",", "=2C")
    fields = [f"host={host}", f"port={port}", f"auth=Bearer {token}"]
    return (f"n,a={saslname}," + "\x01" + "\x01".join(fields) + "\x01\x01").encode("utf-8")


def xoauth2(user: str, token: str) -> bytes:
    """Google's XOAUTH2 client response (before base64)."""
    _refuse_separators(user, token)
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def failure_answer(mechanism: str) -> str:
    """What the client says to the server's error challenge (base64, or empty)."""
    return base64.b64encode(b"\x01").decode("ascii") if mechanism == "OAUTHBEARER" else ""


def error_status(challenge: str) -> str | None:
    """The ``status`` of a server's JSON error challenge (``invalid_token`` …), if any."""
    try:
        data = json.loads(base64.b64decode(challenge.strip(), validate=True))
    except (binascii.Error, ValueError):
        return None
    status = data.get("status") if isinstance(data, dict) else None
    return str(status) if status is not None and str(status).isprintable() else None


def _refuse_separators(*values: str) -> None:
    for value in values:
        if "\x01" in value or "\r" in value or "\n" in value:
            raise ValueError("a SASL field may not hold ^A, CR or LF")
