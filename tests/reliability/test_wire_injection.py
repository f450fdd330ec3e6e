"""Hostile input end to end: whatever intake accepts goes on the wire only as validated.

tests/intake/test_message_properties.py holds intake itself to "stored
exactly as it will be sent, or refused" (arbitrary bytes, smuggled
characters in addresses, line endings, huge headers, non-UTF-8). This test
follows the accepted ones further: each is stored, then really sent by a
flush to a scripted server that records every command line. What must hold on
the wire: the only commands are the ones SMTP needs, in order; each MAIL FROM
and RCPT TO carries exactly the stored envelope, each address one that
``relay.address`` accepts; no line holds a NUL or a stray CR; and the data
the server un-stuffs is byte for byte the stored message.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relay.address import address_problem
from relay.errors import InvalidMessage
from relay.flush import RelayingManager
from relay.message import ParsedMessage, parse_message
from relay.policy import RetryPolicy
from relay.states import MessageState
from relay.store.outbox import Outbox, utc_now
from tests.reliability.conftest import record_figures
from tests.support.fault_server import FaultServer

EXAMPLES = 300
tried: list[bool] = []  # accepted or refused, one per input (for the figures)

# Accepted-looking tricks first: hypothesis leans on the first entries of a list.
INJECTIONS = [
    "bob@example.org> NOTIFY=NEVER ORCPT=rfc822;evil@attacker.example",
    "<bob@example.org> SIZE=1",
    "=?utf-8?q?evil=0D=0ARCPT_TO:<e@attacker.example>?= <bob@example.org>",
    "=?utf-8?b?PGV2aWxAYXR0YWNrZXIuZXhhbXBsZT4=?= <bob@example.org>",
    "Bob <bob@example.org>, =?iso-8859-1?q?=E9?= <cy@example.org>",
    "undisclosed-recipients:;",
    "bob@[127.0.0.1]",
    '"quoted local"@example.org',
    "bob@exa\u200bmple.org",
    "bøb@exämple.org",
    "a" * 70 + "@" + "b" * 250 + ".org",
    "bob@example.org\r\nRCPT TO:<evil@attacker.example>",
    "bob@example.org\nRCPT TO:<evil@attacker.example>",
    "bob@example.org\rDATA",
    "bob@example.org\x00evil@attacker.example",
    '"a\r\nRSET"@example.org',
    "bob@example.org (comment\r\n RCPT TO:<evil@attacker.example>)",
]

# Values that stay on their header line (CR, LF and NUL come from INJECTIONS and
# raw_values, else nearly every input is refused before it could reach the wire).
header_values = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=60),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1").translate({10: 32, 13: 32, 0: 32})),
)
raw_values = st.binary(max_size=40).map(lambda b: b.decode("latin-1"))
line_endings = st.sampled_from(["\r\n", "\n", "\r"])
VALID = [
    "bob@example.org",
    "Bob <bob@example.org>",
    '"Doe, J." <j@example.net>',
    "=?utf-8?q?=C3=A9l=C3=A8ne?= <e@example.com>",
    "cy@[192.0.2.1]",
    "x+tag@sub.example.org",
]
# Printable, so most display names are words a mail client could send; quoting varies.
names = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=30)
bare_addresses = st.sampled_from(VALID[:1] + VALID[4:])
address_items = st.one_of(
    st.sampled_from(VALID),
    st.sampled_from(VALID),  # twice: most lists should be deliverable, to reach the wire
    st.builds(lambda name, addr: f'"{name}" <{addr}>', names, bare_addresses),
    st.builds(lambda name, addr: f"{name} <{addr}>", names, bare_addresses),
    header_values,
)
address_lists = st.lists(address_items, min_size=1, max_size=3).map(", ".join)
bodies = st.one_of(
    st.sampled_from(
        [
            ".\r\nMAIL FROM:<evil@attacker.example>",
            "..",
            ".",
            "hi",
            "",
            "a\r\n.\r\nRSET\r\nRCPT TO:<e@attacker.example>\r\nDATA\r\n\x00",
        ]
    ),
    st.lists(
        st.sampled_from([".", "..", ".QUIT", "x", "\r", "\n", "\r\n", "\x00", "\xff", "=?"]),
        max_size=30,
    ).map("".join),
)


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    eol = draw(line_endings)
    fields = [
        ("From", draw(st.one_of(st.just("Ann <ann@example.org>"), address_items))),
        ("To", draw(address_lists)),
    ]
    for name in ("Cc", "Bcc", "Reply-To", "X-Note"):
        if draw(st.booleans()):
            fields.append((name, draw(address_lists)))
    fields.append(("Subject", draw(st.one_of(header_values, header_values, raw_values))))
    text = eol.join(f"{name}: {value}" for name, value in fields) + eol + eol
    return text.encode("utf-8", "surrogateescape") + draw(bodies).encode("utf-8", "surrogateescape")


COMMAND = re.compile(
    r"EHLO \S+|MAIL FROM:<(?P<sender>[^<>\s]*)>(?: (?:SIZE=\d+|BODY=8BITMIME|SMTPUTF8))*"
    r"|RCPT TO:<(?P<rcpt>[^<>\s]+)>|DATA|RSET|QUIT"
)


async def send(home: Path, parsed: ParsedMessage) -> tuple[FaultServer, Outbox, int]:
    outbox = Outbox.open(home)
    message_id = outbox.add_message(parsed).id
    async with FaultServer() as server:
        manager = RelayingManager(
            outbox,
            choose_account=lambda _: server.account(),
            password_for=lambda _: None,
            policy=RetryPolicy(),
            clock=utc_now,
        )
        await manager.run()
    return server, outbox, message_id


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(hostile_messages())
@example(b"From: ann@example.org\r\nTo: bob@example.org\r\n\r\n.\r\nQUIT\r\n")
@example(b"From: ann@example.org\nTo: bob@example.org, =?utf-8?q?x=0D=0ADATA?= <c@d.org>\n\nx\n")
def test_what_intake_accepts_reaches_the_wire_only_as_validated(raw: bytes) -> None:
    try:
        parsed = parse_message(raw)
    except InvalidMessage:
        tried.append(False)
        return
    tried.append(True)
    with tempfile.TemporaryDirectory() as directory:
        server, outbox, message_id = asyncio.run(send(Path(directory), parsed))
        with outbox:
            stored = outbox.raw(message_id)
            snapshot = outbox.get(message_id)
    assert snapshot.state is MessageState.SENT, snapshot
    senders, rcpts = [], []
    for line in server.commands:
        assert "\0" not in line and "\r" not in line, repr(line)
        match = COMMAND.fullmatch(line)
        assert match is not None, repr(line)
        if match["sender"] is not None:
            senders.append(match["sender"])
        if match["rcpt"] is not None:
            rcpts.append(match["rcpt"])
    assert [line.split(" ", 1)[0].split(":")[0] for line in server.commands] == [
        "EHLO",
        "MAIL",
        *["RCPT"] * len(parsed.recipients),
        "DATA",
        "QUIT",
    ]
    assert senders == [parsed.sender]
    assert rcpts == list(parsed.recipients)
    assert all(address_problem(a) is None for a in [*senders, *rcpts])
    assert [m.body for m in server.messages] == [stored]
    assert stored == parsed.raw


def test_zz_figures_of_the_wire_injection_run() -> None:
    """Runs after the property (file order): records how many inputs were tried."""
    record_figures(
        "test_wire_injection",
        inputs=len(tried),
        accepted=sum(tried),
        refused=len(tried) - sum(tried),
    )
