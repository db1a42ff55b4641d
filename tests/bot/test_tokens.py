"""Lock tokens and the random block of WeChat's encryption: never repeated across threads,
and a forked child never repeats what its parent hands out."""

from __future__ import annotations

import os
import threading

import pytest

from bot import tokens


def test_lock_tokens_and_random_blocks_are_unique_across_threads():
    per_thread, results = 2000, []

    def draw():
        results.append([(tokens.lock_token(), tokens.random16()) for _ in range(per_thread)])

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drawn = [pair for chunk in results for pair in chunk]
    assert len({token for token, _ in drawn}) == len(drawn) == 8 * per_thread
    assert len({block for _, block in drawn}) == len(drawn)
    assert all(len(block) == 16 for _, block in drawn)


def test_random_blocks_span_many_batches_without_repeating():
    blocks = [tokens.random16() for _ in range(tokens.BATCH * 3 + 5)]
    assert len(set(blocks)) == len(blocks)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_repeats_nothing_its_parent_hands_out():
    tokens.lock_token(), tokens.random16()  # the parent has state worth copying
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it draws, then leave at once
        try:
            os.close(read)
            drawn = [f"{tokens.lock_token()} {tokens.random16().hex()}" for _ in range(50)]
            os.write(write, "\n".join(drawn).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    child = [line.split() for line in b"".join(chunks).decode().splitlines()]
    parent = [(tokens.lock_token(), tokens.random16().hex()) for _ in range(50)]
    assert len(child) == 50
    assert not {t for t, _ in child} & {t for t, _ in parent}
    assert not {b for _, b in child} & {b for _, b in parent}
    assert {t[:16] for t, _ in child}.isdisjoint({t[:16] for t, _ in parent})  # a prefix of its own
