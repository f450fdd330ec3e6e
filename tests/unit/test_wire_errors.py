"""What ``Wire`` raises is the kind of error it describes, as aiosmtplib's errors are.

A lost connection is a ``ConnectionError`` and a reply that never came a
``TimeoutError`` (both ``OSError``), so a caller that handles the standard
kinds handles these; a server that broke the protocol is neither, and every
one of them is still a ``WireError`` for the session that translates them.
"""

from __future__ import annotations

import aiosmtplib

from relay.smtp.wire import WireClosed, WireError, WireGarbled, WireTimeout


def test_a_lost_connection_is_a_connection_error_like_aiosmtplibs() -> None:
    assert issubclass(aiosmtplib.SMTPServerDisconnected, ConnectionError)
    error = WireClosed("the server closed the connection")
    assert isinstance(error, ConnectionError) and isinstance(error, WireError)
    assert str(error) == "the server closed the connection"


def test_a_missing_reply_is_a_timeout_error_like_aiosmtplibs() -> None:
    assert issubclass(aiosmtplib.SMTPTimeoutError, TimeoutError)
    error = WireTimeout("no reply within 3 s")
    assert isinstance(error, TimeoutError) and isinstance(error, WireError)
    assert str(error) == "no reply within 3 s"


def test_a_protocol_error_is_not_an_os_error() -> None:
    assert not issubclass(WireGarbled, OSError)
    assert issubclass(WireGarbled, WireError)
