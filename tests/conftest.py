"""Settings every test shares: no display, and no chance of touching the user's data."""

from __future__ import annotations

import os

# Qt draws offscreen in every test (and in every subprocess a test starts).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# No test may read or write the real user's outbox.
os.environ.pop("OUTBOX_HOME", None)
