"""A person's browser at the test authorization server, as an HTTP client.

``consent`` opens the authorization URL, finds the consent page's form,
presses "Allow", and follows the redirect to where the server sends it -- the
loopback listener of the Outbox under test -- and returns that last page.
``approve_device`` enters a device code on the verification page.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx2

_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


def consent(authorization_url: str, *, allow: bool = True) -> httpx2.Response:
    with httpx2.Client(timeout=10.0, follow_redirects=False) as browser:
        page = browser.get(authorization_url)
        assert page.status_code == 200, page.text
        assert "wants to send mail as you" in page.text  # the consent page, not an error
        match = _FORM_ACTION.search(page.text)
        assert match is not None
        action = urljoin(authorization_url, match.group(1).replace("&amp;", "&"))
        answer = browser.post(action, data={"confirm": "yes" if allow else "no"})
        assert answer.status_code == 302, answer.text
        return browser.get(answer.headers["Location"])  # back to Outbox on 127.0.0.1


def approve_device(verification_uri: str, user_code: str) -> None:
    with httpx2.Client(timeout=10.0) as browser:
        page = browser.get(verification_uri, params={"user_code": user_code})
        assert page.status_code == 200
        done = browser.post(verification_uri, data={"user_code": user_code, "confirm": "yes"})
        assert done.status_code == 200, done.text
