"""Token and device endpoints that answer as a broken or hostile server might.

Each endpoint is a real HTTP server on 127.0.0.1 (``tests.support.token_endpoint``)
and Outbox's real client code talks to it; what is checked is that every wait
stays bounded and that nothing secret comes back in an error's text, whatever
the endpoint echoes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, urlencode, urlsplit

import pytest

from relay.oauth.login import (
    SignInFailed,
    request_device_code,
    sign_in_with_browser,
    sign_in_with_device,
)
from relay.oauth.providers import Endpoints
from relay.oauth.tokens import TokenEndpointUnavailable, TokenRefused, TokenSource
from tests.support.keyrings import FILE_ENV
from tests.support.token_endpoint import (
    Answer,
    echo_as_error,
    reply_json,
    serving_endpoint,
    trickling,
)

CLIENT_SECRET = "GOCSPX-s3cr/t+client=="
#: Google's refresh tokens start with ``1//``: a form URL-encodes them.
REFRESH_TOKEN = "1//0gRefresh+Token/With=Slashes"


def endpoints_at(base: str) -> Endpoints:
    return Endpoints(
        client_id="outbox-test-client",
        authorize_url=f"{base}/authorize",
        token_url=f"{base}/token",
        device_url=f"{base}/device",
        scope="smtp",
    )


def shows_no_secret(text: str, *secrets: str) -> bool:
    forms = {form for s in secrets for form in (s, quote(s, safe=""), quote_plus(s))}
    return not any(form in text for form in forms)


async def test_a_token_endpoint_that_trickles_its_answer_is_given_up_on_in_time() -> None:
    loop = asyncio.get_running_loop()
    async with serving_endpoint(trickling(0.05)) as base:
        source = TokenSource("work", endpoints_at(base), REFRESH_TOKEN, timeout_s=0.5)
        started = loop.time()
        with pytest.raises(TokenEndpointUnavailable, match=r"within 0\.5 s"):
            await source.access_token()
        # Each byte comes well within the timeout; the whole answer would take 10 s.
        assert loop.time() - started < 5


async def test_a_refresh_echoed_url_encoded_shows_neither_token_nor_client_secret() -> None:
    async with serving_endpoint(echo_as_error) as base:
        source = TokenSource("work", endpoints_at(base), REFRESH_TOKEN, client_secret=CLIENT_SECRET)
        with pytest.raises(TokenRefused) as refused:
            await source.access_token()
    said = str(refused.value)
    assert "server_error" in said
    assert shows_no_secret(said, REFRESH_TOKEN, CLIENT_SECRET), said


async def test_a_device_endpoint_echoing_the_request_does_not_show_the_client_secret() -> None:
    async with serving_endpoint(echo_as_error) as base:
        with pytest.raises(SignInFailed) as failed:
            await request_device_code(
                endpoints_at(base), account_name="work", client_secret=CLIENT_SECRET
            )
    said = str(failed.value)
    assert "server_error" in said
    assert shows_no_secret(said, CLIENT_SECRET), said


def device_then(token_answer: str, interval: float, expires_in: float) -> Answer:
    """An endpoint giving a device code, then ``token_answer`` as the token error."""

    async def answer(path: str, body: str, writer: asyncio.StreamWriter) -> None:
        if path == "/device":
            await reply_json(
                writer,
                200,
                {
                    "device_code": "the-device-code",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "https://example.test/device",
                    "expires_in": expires_in,
                    "interval": interval,
                },
            )
        elif token_answer == "echo":
            await echo_as_error(path, body, writer)
        else:
            await reply_json(writer, 400, {"error": token_answer})

    return answer


async def test_a_device_token_error_echoing_the_request_does_not_show_the_client_secret() -> None:
    async with serving_endpoint(device_then("echo", 1, 600)) as base:
        with pytest.raises(SignInFailed) as failed:
            await sign_in_with_device(
                endpoints_at(base),
                account_name="work",
                show=lambda code: None,
                client_secret=CLIENT_SECRET,
                sleep=lambda s: asyncio.sleep(0),
            )
    said = str(failed.value)
    assert "server_error" in said
    assert shows_no_secret(said, CLIENT_SECRET), said


async def test_a_device_sign_in_waits_no_longer_than_its_code_lives_whatever_the_interval() -> None:
    clock = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    # An interval of a day for a code that lives 30 s, then slow_down on every poll.
    async with serving_endpoint(device_then("slow_down", 86_400, 30)) as base:
        with pytest.raises(SignInFailed, match="expired"):
            await sign_in_with_device(
                endpoints_at(base),
                account_name="work",
                show=lambda code: None,
                sleep=sleep,
                monotonic_s=lambda: clock[0],
            )
    assert sum(slept) <= 30


async def test_a_rotated_refresh_token_that_is_not_one_is_refused_and_the_old_one_kept() -> None:
    async def answer(path: str, body: str, writer: asyncio.StreamWriter) -> None:
        await reply_json(
            writer,
            200,
            {"access_token": "at", "token_type": "Bearer", "refresh_token": "new \x1b[2Jtoken"},
        )

    rotated: list[str] = []
    async with serving_endpoint(answer) as base:
        source = TokenSource("work", endpoints_at(base), REFRESH_TOKEN, on_rotated=rotated.append)
        with pytest.raises(TokenRefused, match="not printable ASCII"):
            await source.access_token()
    assert rotated == []


#: An escape sequence that clears a terminal, and a right-to-left override.
HOSTILE = "\x1b[2J\x1b[31mcall +1-555\u202egnp.exe"


def shows_nothing_hostile(text: str) -> bool:
    return "\x1b" not in text and "\u202e" not in text and "\\x1b[2J" in text


async def test_a_token_endpoints_error_text_is_shown_with_its_controls_escaped() -> None:
    async def answer(path: str, body: str, writer: asyncio.StreamWriter) -> None:
        await reply_json(writer, 400, {"error": "x\x1b]0;", "error_description": HOSTILE})

    async with serving_endpoint(answer) as base:
        with pytest.raises(TokenRefused) as refused:
            await TokenSource("work", endpoints_at(base), REFRESH_TOKEN).access_token()
    said = str(refused.value)
    assert shows_nothing_hostile(said) and "\\u202e" in said, said


async def test_a_refusal_brought_back_by_the_browser_is_shown_with_its_controls_escaped() -> None:
    import httpx2

    def open_url(url: str) -> None:
        async def refuse() -> None:
            query = parse_qs(urlsplit(url).query)
            back = (
                query["redirect_uri"][0]
                + "?"
                + urlencode(
                    {
                        "state": query["state"][0],
                        "error": "access_denied",
                        "error_description": HOSTILE,
                    }
                )
            )
            async with httpx2.AsyncClient() as browser:
                await browser.get(back)

        asyncio.get_running_loop().create_task(refuse())

    with pytest.raises(SignInFailed) as failed:
        await sign_in_with_browser(
            endpoints_at("https://auth.example.test"),
            account_name="work",
            open_url=open_url,
            timeout_s=30,
        )
    said = str(failed.value)
    assert "access_denied" in said and shows_nothing_hostile(said), said


async def test_a_device_code_and_url_are_printed_with_their_controls_escaped(
    tmp_path: Path,
) -> None:
    import os
    import sys

    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
        FILE_ENV: str(tmp_path / "keyring.json"),
    }

    async def answer(path: str, body: str, writer: asyncio.StreamWriter) -> None:
        if path == "/device":
            code = {"device_code": "d", "user_code": HOSTILE, "interval": 1}
            await reply_json(writer, 200, {**code, "verification_uri": "https://x/" + HOSTILE})
        else:
            await reply_json(writer, 400, {"error": "expired_token"})

    async def outbox(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "relay.cli", "--home", str(tmp_path / "home"), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        return await process.wait(), out.decode()

    async with serving_endpoint(answer) as base:
        added = await outbox(
            "account", "add", "work", "--host", "127.0.0.1", "--user", "me@example.test",
            "--oauth2", "custom", "--oauth-client-id", "c", "--oauth-scope", "smtp",
            "--oauth-authorize-url", f"{base}/authorize", "--oauth-token-url", f"{base}/token",
            "--oauth-device-url", f"{base}/device",
        )  # fmt: skip
        assert added[0] == 0, added[1]
        code, printed = await outbox("account", "login", "work", "--device")
    assert code == 1 and "expired_token" in printed
    assert shows_nothing_hostile(printed) and printed.count("\\x1b[2J") == 2, printed


async def test_an_unavailable_token_endpoint_is_asked_once_per_flush_not_once_per_session() -> None:
    asked: list[str] = []

    async def answer(path: str, body: str, writer: asyncio.StreamWriter) -> None:
        asked.append(path)
        writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    async with serving_endpoint(answer) as base:
        source = TokenSource("work", endpoints_at(base), REFRESH_TOKEN)
        for _ in range(3):  # three sessions (batches) of one account in one flush
            with pytest.raises(TokenEndpointUnavailable, match="HTTP 503"):
                await source.access_token()
    assert asked == ["/token"]


async def test_a_client_the_token_endpoint_refuses_stops_the_account_in_one_plain_line(
    tmp_path: Path,
) -> None:
    from relay.accounts import Account, Security
    from relay.flush import RelayingManager
    from relay.message import ParsedMessage
    from relay.oauth.providers import OAuth2Settings, Provider
    from relay.policy import RetryPolicy
    from relay.store.outbox import Outbox, utc_now
    from tests.support.oauth_smtp import serving_oauth_smtp

    async def answer(path: str, body: str, writer: asyncio.StreamWriter) -> None:
        await reply_json(writer, 401, {"error": "invalid_client"})

    message = ParsedMessage("me@example.test", ("bob@example.org",), b"Subject: x\r\n\r\nx\r\n")
    with Outbox.open(tmp_path / "home") as outbox, serving_oauth_smtp(lambda t: True) as smtp:
        queued = outbox.add_message(message).id
        async with serving_endpoint(answer) as base:
            account = Account(
                name="work", host=smtp.host, port=smtp.port, security=Security.NONE,
                user="me@example.test", connect_timeout_s=5.0, command_timeout_s=5.0,
                oauth2=OAuth2Settings(Provider.CUSTOM, "c", token_url=f"{base}/token"),
            )  # fmt: skip
            source = TokenSource("work", endpoints_at(base), REFRESH_TOKEN)
            result = await RelayingManager(
                outbox,
                choose_account=lambda _: account,
                password_for=lambda _: source,
                policy=RetryPolicy(),
                clock=utc_now,
            ).run()
        assert outbox.get(queued).attempts == 0  # nothing was tried: the mail waits
    [error] = result.errors
    said = str(error)
    assert "invalid_client" in said and said.count("account work") == 1, said
    assert "account test" not in said  # the server offers OAuth2: its mechanisms are not why
    assert "outbox account login work" in said  # where a refused client shows itself


async def test_a_device_poll_the_endpoint_cannot_answer_is_asked_again_not_the_end() -> None:
    polls: list[str] = []

    async def answer(path: str, body: str, writer: asyncio.StreamWriter) -> None:
        if path == "/device":
            await device_then("authorization_pending", 1, 600)(path, body, writer)
            return
        polls.append(path)
        if len(polls) == 1:  # a passing outage at the first poll
            writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        else:
            token = {"access_token": "at", "token_type": "Bearer", "refresh_token": "rt-2"}
            await reply_json(writer, 200, token)

    async with serving_endpoint(answer) as base:
        refresh = await sign_in_with_device(
            endpoints_at(base),
            account_name="work",
            show=lambda code: None,
            sleep=lambda s: asyncio.sleep(0),
        )
    assert refresh == "rt-2" and len(polls) == 2
