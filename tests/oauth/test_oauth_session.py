"""OAuth2 end to end in one process: sign in at a real authorization server, then AUTH with it.

The authorization server is Authlib's (``tests.support.oauth_server``); the
SMTP server takes only tokens it issued and still holds valid by its clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from relay.accounts import Account, Security
from relay.oauth.login import DeviceCode, sign_in_with_browser, sign_in_with_device
from relay.oauth.providers import Endpoints
from relay.oauth.tokens import SignInNeeded, TokenSource
from relay.report import FailureKind, SessionFailure
from relay.smtp.opening import open_session
from relay.smtp.session import Session
from relay.smtp.transcript import Transcript
from tests.oauth.conftest import FakeClock
from tests.support.oauth_browser import approve_device, consent
from tests.support.oauth_server import CLIENT_ID, SCOPE, USER, AuthorizationServerRunning
from tests.support.oauth_smtp import OAuthSmtpRunning, serving_oauth_smtp

pytestmark = pytest.mark.filterwarnings(
    "ignore:Session.login_data is deprecated:DeprecationWarning"
)


def endpoints_of(server: AuthorizationServerRunning) -> Endpoints:
    return Endpoints(
        client_id=CLIENT_ID,
        authorize_url=server.authorize_url,
        token_url=server.token_url,
        device_url=server.device_url,
        scope=SCOPE,
    )


def account_for(smtp: OAuthSmtpRunning) -> Account:
    return Account(
        name="work",
        host=smtp.host,
        port=smtp.port,
        security=Security.NONE,
        user=USER,
        connect_timeout_s=5.0,
        command_timeout_s=5.0,
        data_timeout_s=5.0,
    )


async def browser_sign_in(server: AuthorizationServerRunning) -> str:
    pages: list[asyncio.Task[object]] = []

    def open_url(url: str) -> None:
        pages.append(asyncio.get_running_loop().create_task(asyncio.to_thread(consent, url)))

    token = await sign_in_with_browser(
        endpoints_of(server), account_name="work", open_url=open_url, timeout_s=30
    )
    await asyncio.gather(*pages)
    return token


async def opened(account: Account, source: TokenSource, transcript: Transcript) -> Session:
    result = await open_session(account, source, transcript=transcript)
    assert isinstance(result, Session), result
    return result


async def test_browser_sign_in_end_to_end_gives_a_refresh_token_the_server_issued(
    auth_server: AuthorizationServerRunning,
) -> None:
    token = await browser_sign_in(auth_server)
    assert token in auth_server.issued_tokens()
    # PKCE and the code were checked by Authlib's grant: one code exchanged, no refresh yet.
    assert auth_server.state.token_requests == ["authorization_code"]


async def test_the_listener_ignores_a_redirect_without_this_sign_ins_state(
    auth_server: AuthorizationServerRunning,
) -> None:
    import httpx2

    strays: list[int] = []

    def open_url(url: str) -> None:
        async def stray_then_consent() -> None:
            from urllib.parse import parse_qs, urlsplit

            redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
            async with httpx2.AsyncClient() as other:
                strays.append((await other.get(redirect + "?code=forged&state=wrong")).status_code)
            await asyncio.to_thread(consent, url)

        asyncio.get_running_loop().create_task(stray_then_consent())

    token = await sign_in_with_browser(
        endpoints_of(auth_server), account_name="work", open_url=open_url, timeout_s=30
    )
    assert strays == [400]
    assert token in auth_server.issued_tokens()


async def test_device_sign_in_waits_for_the_person_then_gives_a_refresh_token(
    auth_server: AuthorizationServerRunning,
) -> None:
    shown: list[DeviceCode] = []
    polls = 0

    async def sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        assert seconds >= 1  # the server's interval is honoured
        if polls == 2:  # the person finishes after one poll said "pending"
            await asyncio.to_thread(approve_device, shown[0].verification_uri, shown[0].user_code)

    token = await sign_in_with_device(
        endpoints_of(auth_server), account_name="work", show=shown.append, sleep=sleep
    )
    assert polls == 2
    assert token in auth_server.issued_tokens()
    assert shown[0].verification_uri == f"{auth_server.base_url}/device"


async def test_oauthbearer_is_used_and_the_transcript_holds_no_token(
    auth_server: AuthorizationServerRunning, server_clock: FakeClock
) -> None:
    refresh = await browser_sign_in(auth_server)
    with serving_oauth_smtp(auth_server.token_is_valid) as smtp:
        source = TokenSource("work", endpoints_of(auth_server), refresh, now_s=server_clock)
        transcript = Transcript()
        session = await opened(account_for(smtp), source, transcript)
        assert session.offer.auth_mechanism == "OAUTHBEARER"
        await session.quit()
        assert smtp.accepted() == [("OAUTHBEARER", USER, True)]
    text = transcript.render()
    assert "AUTH OAUTHBEARER ****" in text
    for token in auth_server.issued_tokens():
        assert token not in text


async def test_xoauth2_when_the_server_offers_only_that(
    auth_server: AuthorizationServerRunning, server_clock: FakeClock
) -> None:
    refresh = await browser_sign_in(auth_server)
    with serving_oauth_smtp(auth_server.token_is_valid, mechanisms=("XOAUTH2",)) as smtp:
        source = TokenSource("work", endpoints_of(auth_server), refresh, now_s=server_clock)
        session = await opened(account_for(smtp), source, Transcript())
        await session.quit()
        assert smtp.accepted() == [("XOAUTH2", USER, True)]


async def test_sessions_opening_at_once_share_one_refresh(
    auth_server: AuthorizationServerRunning, server_clock: FakeClock
) -> None:
    refresh = await browser_sign_in(auth_server)
    with serving_oauth_smtp(auth_server.token_is_valid) as smtp:
        source = TokenSource("work", endpoints_of(auth_server), refresh, now_s=server_clock)
        sessions = await asyncio.gather(
            *(opened(account_for(smtp), source, Transcript()) for _ in range(3))
        )
        for session in sessions:
            await session.quit()
        assert smtp.accepted() == [("OAUTHBEARER", USER, True)] * 3
    assert auth_server.refresh_requests() == 1


async def test_a_token_past_its_lifetime_is_refreshed_before_it_is_used(
    auth_server: AuthorizationServerRunning, server_clock: FakeClock
) -> None:
    refresh = await browser_sign_in(auth_server)
    with serving_oauth_smtp(auth_server.token_is_valid) as smtp:
        source = TokenSource("work", endpoints_of(auth_server), refresh, now_s=server_clock)
        for _ in range(2):  # within the token's life: one refresh serves both
            session = await opened(account_for(smtp), source, Transcript())
            await session.quit()
            server_clock.advance(1)
        assert source.refreshes == 1
        server_clock.advance(10)  # the 5 s token has expired, for both sides
        last = await opened(account_for(smtp), source, Transcript())
        await last.quit()
        # Never refused: the last session started with a new token.
        assert smtp.accepted() == [("OAUTHBEARER", USER, True)] * 3
    assert source.refreshes == 2
    assert auth_server.refresh_requests() == 2


async def test_a_refused_token_is_refreshed_once_and_the_auth_tried_again(
    auth_server: AuthorizationServerRunning, server_clock: FakeClock
) -> None:
    refresh = await browser_sign_in(auth_server)
    client_clock = FakeClock(server_clock.now)  # the client believes its token still good
    with serving_oauth_smtp(auth_server.token_is_valid) as smtp:
        source = TokenSource("work", endpoints_of(auth_server), refresh, now_s=client_clock)
        first = await opened(account_for(smtp), source, Transcript())
        await first.quit()
        server_clock.advance(10)
        transcript = Transcript()
        second = await opened(account_for(smtp), source, transcript)
        await second.quit()
        assert smtp.accepted() == [
            ("OAUTHBEARER", USER, True),
            ("OAUTHBEARER", USER, False),
            ("OAUTHBEARER", USER, True),
        ]
    assert auth_server.refresh_requests() == 2
    assert "refreshing it once" in transcript.render()


async def test_a_token_refused_even_after_the_refresh_stops_with_an_auth_failure(
    auth_server: AuthorizationServerRunning, server_clock: FakeClock
) -> None:
    refresh = await browser_sign_in(auth_server)
    with serving_oauth_smtp(lambda token: False) as smtp:
        source = TokenSource("work", endpoints_of(auth_server), refresh, now_s=server_clock)
        result = await open_session(account_for(smtp), source, transcript=Transcript())
        assert isinstance(result, SessionFailure)
        assert result.kind is FailureKind.AUTH
        assert "outbox account login work" in result.text
        assert len(smtp.accepted()) == 2  # one refresh, one retry, no more
    assert auth_server.refresh_requests() == 2


async def test_a_server_echoing_the_token_leaves_it_in_no_transcript_or_error(
    auth_server: AuthorizationServerRunning, server_clock: FakeClock
) -> None:
    refresh = await browser_sign_in(auth_server)
    with serving_oauth_smtp(lambda token: False, echo=True) as smtp:
        source = TokenSource("work", endpoints_of(auth_server), refresh, now_s=server_clock)
        transcript = Transcript()
        result = await open_session(account_for(smtp), source, transcript=transcript)
        assert isinstance(result, SessionFailure) and result.kind is FailureKind.AUTH
    said = transcript.render() + result.text + str(result.reply)
    assert "token refused" in said and "****" in said
    for secret in source.secrets:
        assert secret not in said
    assert all(token not in said for token in auth_server.issued_tokens())


async def test_a_revoked_grant_is_a_sign_in_failure_and_nothing_is_sent(
    auth_server: AuthorizationServerRunning, server_clock: FakeClock
) -> None:
    refresh = await browser_sign_in(auth_server)
    auth_server.revoke_grants()
    with serving_oauth_smtp(auth_server.token_is_valid) as smtp:
        source = TokenSource("work", endpoints_of(auth_server), refresh, now_s=server_clock)
        result = await open_session(account_for(smtp), source, transcript=Transcript())
        assert isinstance(result, SessionFailure)
        assert result.kind is FailureKind.SIGN_IN
        assert "outbox account login work" in result.text
        assert refresh not in result.text
        assert smtp.accepted() == []  # no AUTH was even tried


async def test_a_revoked_grant_raises_sign_in_needed_from_the_token_source(
    auth_server: AuthorizationServerRunning, server_clock: FakeClock
) -> None:
    refresh = await browser_sign_in(auth_server)
    auth_server.revoke_grants()
    source = TokenSource("work", endpoints_of(auth_server), refresh, now_s=server_clock)
    with pytest.raises(SignInNeeded) as raised:
        await source.access_token()
    assert raised.value.exit_code == 75


async def test_plain_http_token_endpoints_are_refused_off_loopback(
    auth_server: AuthorizationServerRunning,
) -> None:
    from relay.errors import ConfigError

    remote = replace(endpoints_of(auth_server), token_url="http://auth.example.com/token")
    with pytest.raises(ConfigError, match="plain http"):
        await TokenSource("work", remote, "whatever").access_token()
