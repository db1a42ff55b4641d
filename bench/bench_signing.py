"""Compare raw Ed25519 verification with the full ``verify_token`` path.

``verify_token`` = prefix check + alphabet check + base45 decode + layout parse +
one Ed25519 verify. The ratio shows how much the token wrapper costs on top of
the signature check a gate cannot avoid.

Run: ``.venv/bin/python bench/bench_signing.py [--n 5000]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.signing import (
    KIND_PASS,
    KeyRing,
    encode_token,
    generate_key,
    holder_tag,
    parse_token,
    verify_token,
)


def rate(func: Callable[[], object], n: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` calls per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            func()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()

    ring = KeyRing([generate_key()])
    token = encode_token(
        kind=KIND_PASS,
        object_id=123456789,
        scope_id=42,
        zone=2,
        not_before=1_900_000_000,
        not_after=1_900_086_400,
        holder_tag=holder_tag(b"g" * 32, "11010519491231002X"),
        ring=ring,
    )
    claims, signed, signature = parse_token(token)
    public_key = ring.verifier(claims.kid)
    assert public_key is not None

    raw = rate(lambda: public_key.verify(signature, signed), args.n)
    parse = rate(lambda: parse_token(token), args.n)
    full = rate(lambda: verify_token(token, ring.verifier), args.n)
    print(f"token length            {len(token)} chars")
    print(f"raw Ed25519 verify      {raw:10.0f} /s")
    print(f"parse_token only        {parse:10.0f} /s")
    print(f"verify_token (full)     {full:10.0f} /s")
    print(f"ratio full / raw        {full / raw:10.2f}")


if __name__ == "__main__":
    main()
