"""Whose turn it is to log in: one account's sessions in one flush.

A flush opens an account's sessions side by side up to AUTH (connect, the
greeting, EHLO, STARTTLS, EHLO again: several round trips each), but lets
only one of them log in until the server has given a verdict on the
credentials:

- taken: every session waiting logs in at once, and so does any later one;
- refused: no other session sends them (a wrong password is tried once per
  flush, not once per connection -- servers lock accounts for less); each
  says QUIT and is closed, handing its messages back untouched;
- no verdict (the session ended otherwise: a lost connection, a 454 "try
  later"): the next session waiting takes its turn.

An account without a user name has nothing to wait for (``needed=False``).
No I/O here: the relayer asks for its turn and says what came of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class LoginTurns:
    """One account's turns to log in during one flush (see the module's rules)."""

    def __init__(self, *, needed: bool = True) -> None:
        #: The server's verdict on the credentials: None until one is known.
        self._taken: bool | None = None if needed else True
        self._turn = asyncio.Lock()

    @property
    def refused(self) -> bool:
        """The server refused the credentials: no session of the account sends them again."""
        return self._taken is False

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[bool]:
        """Wait until this session may log in; true to log in, false to QUIT.

        Until the server's verdict is known, a session inside is the only one
        logging in; it says what came of it (``credentials_taken``,
        ``credentials_refused``) or leaves without a verdict, and the next
        one waiting (in the order they came) gets its turn. Once the verdict
        is known, nobody waits.
        """
        if self._taken is None:
            await self._turn.acquire()
            if self._taken is None:
                try:
                    yield True
                finally:
                    self._turn.release()
                return
            self._turn.release()  # decided while this one waited: the next one need not
        taken = self._taken
        assert taken is not None
        yield taken

    def credentials_taken(self) -> None:
        """The server took the credentials: every session logs in from now on."""
        if self._taken is None:
            self._taken = True

    def credentials_refused(self) -> None:
        """The server refused the credentials: no session sends them again."""
        if self._taken is None:
            self._taken = False
