"""Pure rules: what a reply means for a recipient, when to try again, when to give up.

No I/O and no hidden clock: every function takes what it decides on, ``now``
included, so each row of these tables is a unit test.

Classification is by stage *and* code, never code alone:

| stage       | reply                          | verdict for the recipients it covers |
|-------------|--------------------------------|--------------------------------------|
| (local)     | refused before MAIL            | failed (the reason)                  |
| MAIL        | 4xx / 5xx / none               | all deferred / failed / deferred     |
| RCPT        | 2xx                            | accepted: decided at end of data     |
| RCPT        | 4xx, or 552 (RFC 5321 4.5.3.1.10) | deferred                          |
| RCPT        | other 5xx                      | failed                               |
| RCPT        | none (connection lost)         | deferred                             |
| DATA        | 4xx / 5xx instead of 354       | accepted ones deferred / failed      |
| end of data | 2xx                            | accepted ones sent                   |
| end of data | 4xx / 5xx                      | accepted ones deferred / failed      |
| end of data | none, final dot written        | accepted ones **uncertain** (RFC 1047) |
| end of data | none, final dot not written    | accepted ones deferred               |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from relay.report import Reply, Stage, TransactionReport
from relay.states import RecipientState

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an attempt settled for one recipient, and the words that explain it."""

    state: RecipientState
    reply: str | None


def classify(reply: Reply) -> RecipientState:
    """The verdict a negative (or missing) reply gives the recipients it covers."""
    if reply.code == 0 or reply.temporary:
        return RecipientState.DEFERRED
    if reply.stage is Stage.RCPT and reply.code == 552:
        # RFC 5321 4.5.3.1.10: 552 to RCPT was used for "too many recipients";
        # clients must treat it as temporary.
        return RecipientState.DEFERRED
    if reply.permanent:
        return RecipientState.FAILED
    return RecipientState.DEFERRED  # anything odd: never give up on a surprise


def recipient_verdicts(report: TransactionReport, owed: Sequence[str]) -> dict[str, Verdict]:
    """Settle every owed recipient of one transaction, following the table above."""
    lost = str(report.connection_error) if report.connection_error else None

    def everyone(state: RecipientState, text: str) -> dict[str, Verdict]:
        return {address: Verdict(state, text) for address in owed}

    if report.local_error:
        return everyone(RecipientState.FAILED, report.local_error)
    mail = report.mail
    if mail is None or mail.code == 0:
        return everyone(RecipientState.DEFERRED, lost or "the message was not tried")
    if not mail.positive:
        return everyone(classify(mail), str(mail))

    verdicts: dict[str, Verdict] = {}
    accepted: list[str] = []
    for address in owed:
        reply = report.recipients.get(address)
        if reply is None or reply.code == 0:
            verdicts[address] = Verdict(RecipientState.DEFERRED, lost or "recipient not tried")
        elif reply.positive:
            accepted.append(address)
        else:
            verdicts[address] = Verdict(classify(reply), str(reply))
    if not accepted:
        return verdicts

    data, final = report.data, report.end_of_data
    if data is not None and data.code and not data.positive:
        outcome = Verdict(classify(data), str(data))
    elif final is not None and final.code:
        state = RecipientState.SENT if final.positive else classify(final)
        outcome = Verdict(state, str(final))
    elif report.data_completed:
        outcome = Verdict(
            RecipientState.UNCERTAIN,
            "no reply after the end of the data"
            + (f" ({lost})" if lost else "")
            + ": the server may have the message",
        )
    else:
        outcome = Verdict(RecipientState.DEFERRED, lost or "the data was not completed")
    for address in accepted:
        verdicts[address] = outcome
    return verdicts


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Back-off doubling from ``first_retry_s`` up to ``max_retry_s``; expiry at ``lifetime_s``."""

    first_retry_s: float = 60.0
    max_retry_s: float = 3600.0
    lifetime_s: float = 5 * 24 * 3600.0

    def next_attempt_at(self, attempts: int, now: datetime) -> datetime:
        """When to try again after the ``attempts``-th attempt (1 for the first) deferred."""
        exponent = max(0, attempts - 1)
        delay_s = self.first_retry_s * (2.0 ** min(exponent, 32))
        return now + timedelta(seconds=min(delay_s, self.max_retry_s))

    def expired(self, deferred_since: datetime | None, now: datetime) -> bool:
        if deferred_since is None:
            return False
        return now - deferred_since >= timedelta(seconds=self.lifetime_s)

    @classmethod
    def from_config(cls, table: Mapping[str, object]) -> RetryPolicy:
        """From config.toml's ``[queue]`` table (seconds).

        Each value must be finite and in range (``relay.config_values``): a
        ``nan`` or ``1e300`` here once made every flush crash. An unknown key is
        refused, as in an account's table: a misspelt ``lifetime = 604800`` taken
        as absent would fail mail after the default 5 days, not the week meant.
        """
        from relay.config_values import MAX_LIFETIME_S, number_in_range
        from relay.errors import ConfigError

        known = ("first_retry_s", "max_retry_s", "lifetime_s")
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ConfigError(
                f"config: [queue] has no setting {unknown[0]!r} (its settings: {', '.join(known)})"
            )
        defaults = cls()

        def seconds(key: str, default: float) -> float:
            value = table.get(key, default)
            return float(
                number_in_range(
                    value,
                    f"config: [queue] {key}",
                    low=0,
                    low_inclusive=False,
                    high=MAX_LIFETIME_S,
                    unit="of seconds",
                )
            )

        return cls(
            first_retry_s=seconds("first_retry_s", defaults.first_retry_s),
            max_retry_s=seconds("max_retry_s", defaults.max_retry_s),
            lifetime_s=seconds("lifetime_s", defaults.lifetime_s),
        )


def expire(verdicts: Mapping[str, Verdict]) -> dict[str, Verdict]:
    """Turn every deferred verdict into a permanent failure: the queue lifetime is over."""
    return {
        address: (
            Verdict(RecipientState.FAILED, f"expired: {verdict.reply}")
            if verdict.state is RecipientState.DEFERRED
            else verdict
        )
        for address, verdict in verdicts.items()
    }


def attempt_outcome(verdicts: Mapping[str, Verdict]) -> str:
    """One word for an attempt: the recipients' common state, or ``partial``."""
    states = {verdict.state for verdict in verdicts.values()}
    if len(states) == 1:
        return str(states.pop())
    return "partial" if states else "none"
