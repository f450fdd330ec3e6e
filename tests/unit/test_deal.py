"""How a flush deals an account's messages out to its sessions (relay.flush.deal)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from relay.flush import SMALL_BYTES, deal, size_class

KB = 1024
MB = 1024 * 1024


def sized(ids: range | list[int], size_bytes: int = 2 * KB) -> list[tuple[int, int]]:
    return [(message_id, size_bytes) for message_id in ids]


def test_sessions_running_together_take_neighbouring_messages_in_turn() -> None:
    assert deal(sized(range(1, 11)), 3, 2) == [[1, 3, 5], [2, 4, 6], [7, 9], [8, 10]]


def test_four_connections_of_a_quarter_each_interleave_the_whole_outbox() -> None:
    batches = deal(sized(range(1, 10_001)), 2_500, 4)
    assert [batch[:3] for batch in batches] == [[1, 5, 9], [2, 6, 10], [3, 7, 11], [4, 8, 12]]
    assert [len(batch) for batch in batches] == [2_500] * 4


def test_a_few_messages_take_every_connection_not_one_batch() -> None:
    assert deal(sized([7, 8, 9]), 100, 4) == [[7], [8], [9]]
    assert deal(sized(range(1, 19)), 100, 2) == [
        [1, 3, 5, 7, 9, 11, 13, 15, 17],
        [2, 4, 6, 8, 10, 12, 14, 16, 18],
    ]


def test_one_message_is_one_batch_and_none_is_none() -> None:
    assert deal(sized([7]), 100, 4) == [[7]]
    assert deal([], 100, 4) == []


def test_two_large_messages_queued_first_go_last_one_on_each_connection() -> None:
    messages = [(1, 10 * MB), (2, 10 * MB), *sized(range(3, 19), 20 * KB)]
    assert deal(messages, 100, 2) == [
        [3, 5, 7, 9, 11, 13, 15, 17, 1],
        [4, 6, 8, 10, 12, 14, 16, 18, 2],
    ]


def test_a_large_message_and_a_small_one_get_a_session_each() -> None:
    assert deal([(1, 20 * MB), (2, 3 * KB)], 100, 2) == [[2], [1]]


def test_ordinary_mail_of_different_small_sizes_keeps_its_queue_order() -> None:
    messages = [(1, 60 * KB), (2, 1 * KB), (3, 30 * KB), (4, 5 * KB)]
    assert deal(messages, 100, 1) == [[1, 2, 3, 4]]


def test_size_classes_double_above_the_small_size() -> None:
    assert [size_class(size) for size in (0, 1, SMALL_BYTES)] == [0, 0, 0]
    assert size_class(SMALL_BYTES + 1) == size_class(2 * SMALL_BYTES) == 1
    assert size_class(2 * SMALL_BYTES + 1) == size_class(4 * SMALL_BYTES) == 2
    assert size_class(4 * SMALL_BYTES + 1) == 3
    assert size_class(10 * MB) < size_class(20 * MB)


@given(
    sizes=st.lists(st.integers(0, 64 * MB), max_size=300),
    per_connection=st.integers(1, 40),
    connections=st.integers(1, 6),
)
def test_every_message_once_no_batch_too_big_every_connection_used_small_ones_first(
    sizes: list[int], per_connection: int, connections: int
) -> None:
    messages = [(100 + index, size) for index, size in enumerate(sizes)]
    size_of = dict(messages)
    batches = deal(messages, per_connection, connections)
    assert sorted(i for batch in batches for i in batch) == [i for i, _ in messages]
    assert all(0 < len(batch) <= per_connection for batch in batches)
    # The first batches that run together use every connection the messages can fill.
    assert len(batches[:connections]) == min(connections, len(messages))
    # As few rounds as cut in runs: no round but the last is short of a full one.
    rounds = -(-len(messages) // (per_connection * connections))
    assert len(batches) <= rounds * connections
    # Small first: in each batch, and from one round to the next.
    for batch in batches:  # smaller classes first, and queue order within a class
        keys = [(size_class(size_of[i]), i) for i in batch]
        assert keys == sorted(keys)
    starts = [0]
    for r in range(rounds):
        left = len(messages) - r * per_connection * connections
        starts.append(starts[-1] + min(connections, left))
    classes = [
        [size_class(size_of[i]) for batch in batches[a:z] for i in batch]
        for a, z in itertools.pairwise(starts)
    ]
    assert all(max(one) <= min(two) for one, two in itertools.pairwise(classes))
    # Within a round, no session starts its next message with a smaller one than
    # any session's current message: position p comes before position p + 1.
    for a, z in itertools.pairwise(starts):
        group = batches[a:z]
        for position in range(max(len(b) for b in group) - 1):
            here = [size_class(size_of[b[position]]) for b in group if len(b) > position]
            later = [size_class(size_of[b[position + 1]]) for b in group if len(b) > position + 1]
            assert max(here) <= min(later)
