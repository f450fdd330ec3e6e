"""How long sent mail keeps its body: ``[retention] sent_body_days`` in config.toml.

A sent message's body is what the outbox grows by; its row, recipients,
replies and attempts are small and are the history a person looks things up
in. So the bodies of messages sent more than ``sent_body_days`` ago (30 by
default; 0 keeps them forever) are pruned at the start of every flush, the
command line's and the window's (the window also prunes them a batch at a
time between its flushes: ``gui.flush_runner``); the rest stays until a person removes it
(``outbox purge --sent``, the window's Clear Sent). Nothing that is not
``sent`` is ever pruned: a body still owed to someone is the message itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

from relay.errors import ConfigError
from relay.store.outbox import Outbox

DEFAULT_SENT_BODY_DAYS = 30.0
#: More than a lifetime: anything larger is a typo, not a setting.
MAX_DAYS = 36_500.0


def sent_body_days(table: Mapping[str, object]) -> float | None:
    """The ``[retention]`` table's ``sent_body_days``; None when bodies are kept forever.

    Any other key is refused: a misspelt ``sent_body_day = 0`` taken as absent
    would prune, after the default 30 days, bodies the person meant to keep.
    """
    unknown = sorted(set(table) - {"sent_body_days"})
    if unknown:
        raise ConfigError(
            f"config: [retention] has no setting {unknown[0]!r} (its one setting is sent_body_days)"
        )
    value = table.get("sent_body_days", DEFAULT_SENT_BODY_DAYS)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_DAYS
    ):
        raise ConfigError(
            f"config: [retention] sent_body_days must be a number of days from 0 (keep"
            f" forever) to {MAX_DAYS:g}"
        )
    return float(value) or None


def days_ago(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)


def prune_expired_bodies(
    outbox: Outbox, home: Path, now: datetime, limit: int | None = None
) -> list[int]:
    """Prune the bodies ``home``'s retention setting no longer keeps (at most ``limit``);
    the ids pruned."""
    from relay.accounts import retention_settings

    days = sent_body_days(retention_settings(home))
    if days is None:
        return []
    return outbox.prune_sent_bodies(days_ago(now, days), limit)
