"""How a flush deals an account's messages out to its sessions (relay.flush.deal)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay.flush import deal


def test_sessions_running_together_take_neighbouring_messages_in_turn() -> None:
    assert deal(list(range(1, 11)), 3, 2) == [[1, 3, 5], [2, 4, 6], [7, 9], [8, 10]]


def test_four_connections_of_a_quarter_each_interleave_the_whole_outbox() -> None:
    batches = deal(list(range(1, 10_001)), 2_500, 4)
    assert [batch[:3] for batch in batches] == [[1, 5, 9], [2, 6, 10], [3, 7, 11], [4, 8, 12]]
    assert [len(batch) for batch in batches] == [2_500] * 4


def test_what_fits_one_session_stays_one_batch() -> None:
    assert deal([7, 8, 9], 100, 4) == [[7, 8, 9]]
    assert deal([], 100, 4) == []


@given(
    count=st.integers(0, 300),
    per_connection=st.integers(1, 40),
    connections=st.integers(1, 6),
)
def test_as_many_batches_as_cut_in_runs_none_too_big_each_message_once_in_order(
    count: int, per_connection: int, connections: int
) -> None:
    ids = list(range(100, 100 + count))
    batches = deal(ids, per_connection, connections)
    assert len(batches) == -(-count // per_connection)
    assert all(0 < len(batch) <= per_connection for batch in batches)
    assert sorted(i for batch in batches for i in batch) == ids
    assert all(batch == sorted(batch) for batch in batches)
    # Earlier rounds (the batches that run together) hold the earlier messages.
    rounds = [batches[i : i + connections] for i in range(0, len(batches), connections)]
    flat = [max(i for batch in group for i in batch) for group in rounds]
    assert flat == sorted(flat)
