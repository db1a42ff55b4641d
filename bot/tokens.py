"""Per-message lock tokens and random bytes without a system call per message.

``os.urandom`` is a system call that also gives up the GIL; under gunicorn's threads
that can hand the interpreter to another thread and make this one wait its turn back.
Here the OS is asked rarely, and a counter (``itertools.count`` advances atomically
under the GIL, so two threads never get the same number) tells calls apart. A child
process draws everything afresh after ``fork``, so it never repeats its parent's values.

- ``lock_token()``: a per-process random prefix (64 bits from the OS) and the counter.
  It must only be unique among the holders of one user's lock: within a process the
  counter sees to that, across processes the prefix. It never leaves the server (Redis
  keeps it, the finish script compares it), so a guess would gain nothing.
- ``random16()``: 16 bytes straight from the OS, fetched 256 at a time (one system
  call per 256 messages). WeChat's message encryption puts them before the plaintext;
  its IV is fixed, so this block is what makes two encryptions of one reply differ and
  what a chosen-plaintext guess would have to predict: it stays fully random.
"""

from __future__ import annotations

import itertools
import os

BATCH = 256  # 16-byte values per system call

_state: list = []  # [prefix, lock token counter, random16 counter]
_NONE: tuple[bytes, int] = (b"", -BATCH)  # serves no index
_random = _NONE  # (BATCH * 16 random bytes, the first index they serve)


def _reseed() -> None:
    global _random
    _state[:] = [os.urandom(8).hex(), itertools.count(), itertools.count()]
    _random = _NONE


_reseed()
os.register_at_fork(after_in_child=_reseed)


def lock_token() -> str:
    """A value unique to this call among every process and thread (see above)."""
    prefix, counter, _ = _state
    return f"{prefix}{next(counter):x}"


def random16() -> bytes:
    """16 random bytes from the OS, never handed out twice (see above)."""
    global _random
    i = next(_state[2])
    block, first = _random  # one read: another thread may swap in a new block meanwhile
    k = i - first
    if not 0 <= k < BATCH:
        # A block belongs to the index that fetched it; a call only reads its own slot of
        # the block it read, and no two calls have the same index.
        block, first, k = os.urandom(BATCH * 16), i, 0
        _random = (block, first)
    return block[16 * k : 16 * k + 16]
