"""One rule for sizes: decimal units, as the file managers on Linux word them."""

from __future__ import annotations

import pytest

from relay.sizes import size_text


@pytest.mark.parametrize(
    ("octets", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (999, "999 bytes"),
        (1000, "1.0 kB"),
        (48_000, "48.0 kB"),
        (999_949, "999.9 kB"),
        (999_960, "1.0 MB"),  # never "1000.0 kB"
        (8_610_061, "8.6 MB"),  # not 8.2 (MiB) nor 8MB
        (4_600_000_000, "4.6 GB"),
    ],
)
def test_sizes_are_decimal_with_one_decimal_past_a_kilobyte(octets: int, text: str) -> None:
    assert size_text(octets) == text
