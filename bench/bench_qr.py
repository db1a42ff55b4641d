"""Compare QR encode rates of segno and qrcode on Zhizhi-shaped payloads.

Payloads look like pass/permit tokens: "ZZ1:" + 150 characters of the base45
alphabet, so both libraries encode them in alphanumeric mode at level M.

Run: ``.venv/bin/python bench/bench_qr.py [--n 500]`` (qrcode is a bench-only
dependency: ``pip install qrcode==8.2``).
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections.abc import Callable

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def make_payloads(n: int, seed: int = 45) -> list[str]:
    rnd = random.Random(seed)
    return ["ZZ1:" + "".join(rnd.choices(BASE45, k=150)) for _ in range(n)]


def segno_matrix(text: str):
    import segno

    return segno.make_qr(text, error="m", mode="alphanumeric", boost_error=False).matrix


def qrcode_matrix(text: str):
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    qr.add_data(text)
    qr.make(fit=True)
    return qr.get_matrix()


def segno_png(text: str) -> bytes:
    import segno

    buf = io.BytesIO()
    qr = segno.make_qr(text, error="m", mode="alphanumeric", boost_error=False)
    qr.save(buf, kind="png", scale=6, border=4)
    return buf.getvalue()


def qrcode_png(text: str) -> bytes:
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=6, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf, format="PNG")
    return buf.getvalue()


def rate(fn: Callable[[str], object], payloads: list[str], repeat: int = 3) -> float:
    """Best-of-``repeat`` encodes per CPU second (process time: robust on a busy machine)."""
    fn(payloads[0])  # warm imports and caches outside the timed loop
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for p in payloads:
            fn(p)
        best = min(best, time.process_time() - start)
    return len(payloads) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="payloads per run")
    args = parser.parse_args()
    payloads = make_payloads(args.n)

    import segno

    probe = segno.make_qr(payloads[0], error="m", mode="alphanumeric", boost_error=False)
    print(
        f"payload: {len(payloads[0])} chars, QR version {probe.version}, "
        f"mode {probe.mode}, level {probe.error}"
    )
    for label, s_fn, q_fn in (
        ("matrix", segno_matrix, qrcode_matrix),
        ("png", segno_png, qrcode_png),
    ):
        s = rate(s_fn, payloads)
        q = rate(q_fn, payloads)
        print(f"{label:6s} segno {s:9.0f}/s   qrcode {q:9.0f}/s   segno/qrcode {s / q:5.2f}x")


if __name__ == "__main__":
    main()
