"""Coverage-guided fuzzing of intake with atheris (libFuzzer), beside the hypothesis properties.

Hypothesis (test_message_properties.py) draws from grammars we wrote; this
harness lets libFuzzer mutate bytes toward new branches of ``relay.message``
and ``relay.address`` instead. The verdict is the same: every input is stored
exactly as it will be sent (``assert_ready_to_send``) or refused with
``InvalidMessage``; anything else -- another exception, a failed assertion --
is a crash, and libFuzzer saves the input beside ``-artifact_prefix``.

Run on demand for as long as you like::

    uv run python -m tests.intake.fuzz_intake -max_total_time=600 CORPUS_DIR

test_coverage_guided_fuzz.py runs it briefly in every test run.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["relay"]):
    from relay.errors import InvalidMessage
    from relay.message import parse_message

from tests.intake.test_message_properties import assert_ready_to_send

SEEDS = [
    b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nbody\r\n",
    b'From: a@example.org\nTo: b@example.org, "Doe, J" <j@example.net>\nBcc: c@example.org\n'
    b"Cc: =?utf-8?q?=C3=A9?= <e@example.com>\n\n.\n..\nx",
    b"Resent-From: r@example.org\r\nResent-To: s@example.org\r\nFrom: a@example.org\r\n"
    b"To: b@example.org\r\nSubject: =?utf-8?b?w6k=?=\r\n folded\r\n\r\n\xff\r\n",
    b"Sender: s@[192.0.2.1]\rTo: undisclosed-recipients:;\rCc: b\xc3\xb8b@ex\xc3\xa4mple.org\r\r",
]


def check(data: bytes) -> None:
    try:
        parsed = parse_message(data)
    except InvalidMessage as exc:
        text = str(exc)
        assert text and "\n" not in text and "\r" not in text, repr(text)
        return
    assert_ready_to_send(parsed, data)


def main(argv: list[str]) -> None:
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
