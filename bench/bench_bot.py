"""Signed safe-mode WeChat text messages per second through gunicorn, as a ratio to the
bare Flask ``success`` endpoint measured in the same run with the same server settings.

The messages are what people chatting with the account send, each a distinct MsgId,
signed and AES-encrypted like WeChat's: 300 users (half of them bound grid workers, half
not yet bound) each go through "帮助" (help for their roles), "查验" (starts the
verification flow: its state is written to Redis), "取消" (leaves the flow: the state is
dropped) and "你好" (not understood: the short help), in turn. Every reply is decrypted
after its round and checked against what that user's message must get (the request's
nonce, echoed in the reply envelope, names the message); a wrong or missing answer fails
the benchmark.

Per message the bot verifies the signature and the timestamp window, decrypts and checks
the AppID, parses, claims the dedup key + takes the user's lock + loads the state and the
cached identity (one Redis round trip), routes, sends the reply/state/unlock script
without waiting for it (bot.link), and answers with an encrypted passive reply: no SQL.
The identity of each user is loaded once, during the warm-up.

``make bench`` runs it with the others (``run``); alone:
``.venv/bin/python -m bench.bench_bot [--requests 6000]``.
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import time

from bench import loadgen
from bench.harness import Cpu, Row, app_env, bench_database, gunicorn, print_table
from bot.crypto import MessageCrypto, sha1_signature, signature_matches

TOKEN, APP_ID = "benchtoken", "wx00000000bench001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
USERS = 300  # even users are bound grid workers
TARGET_RATIO = 0.40
ROUNDS = 7
TARGET_P99_MS = 100.0

#: what each user sends, in turn, and a piece of the reply it must get
SCRIPT = [
    ("帮助", "您可以发送"),
    ("查验", "请发送要查验的编号"),
    ("取消", "已取消当前操作"),
    ("你好", "没看懂您的消息"),
]
WORKER_ONLY = "每日一练"  # in a bound grid worker's help, never in an unbound user's
BIND_HINT = "首次使用请先绑定"


RUN = secrets.token_hex(3)  # fresh chat users per run: nothing left in Redis from an earlier one


def openid(user: int) -> str:
    return f"o_bench_{RUN}_{user:04d}"


def seed(database_url: str) -> None:
    """The bound half of the users: a grid worker each, with the official-account identity."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from models.identity import Identity, IdentityKind, Person, Role, RoleGrant

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with Session(engine) as s:
        for user in range(0, USERS, 2):
            person = Person(name=f"网格员{user:04d}")
            s.add(person)
            s.flush()
            s.add(RoleGrant(person_id=person.id, role=Role.grid_worker))
            s.add(Identity(person_id=person.id, kind=IdentityKind.wechat_oa, app_id=APP_ID,
                           external_id=openid(user)))  # fmt: skip
        s.commit()
    engine.dispose()


def message(crypto: MessageCrypto, k: int, msg_base: int, now: int) -> tuple[str, bytes]:
    """Message ``k`` (user ``k % USERS``'s turn ``k // USERS``) as WeChat posts it in safe
    mode: the signed query string (path included) and the encrypted XML body."""
    user, text = openid(k % USERS), SCRIPT[(k // USERS) % len(SCRIPT)][0]
    ts, nonce = str(now), str(k)
    inner = (
        f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{user}]]>"
        f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_base + k}</MsgId></xml>"
    )
    encrypt = crypto.encrypt(inner)
    sig = sha1_signature(TOKEN, ts, nonce, encrypt)
    path = f"/bot/wechat?timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={sig}&openid={user}"
    body = f"<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return path, body.encode()


def build_messages(first: int, n: int, msg_base: int) -> list[bytes]:
    """Messages ``first .. first+n-1`` as pre-encoded HTTP requests (encryption is the
    client's cost, not measured)."""
    crypto = MessageCrypto(TOKEN, AES_KEY, APP_ID)
    now = int(time.time())
    out = []
    for k in range(first, first + n):
        path, body = message(crypto, k, msg_base, now)
        out.append(loadgen.build_request("POST", path, body, headers={"Content-Type": "text/xml"}))
    return out


_FIELD = {name: re.compile(rf"<{name}><!\[CDATA\[(.*?)\]\]></{name}>|<{name}>(\d+)</{name}>", re.S)
          for name in ("Encrypt", "MsgSignature", "TimeStamp", "Nonce", "ToUserName", "Content")}  # fmt: skip


def _field(name: str, xml: str) -> str:
    m = _FIELD[name].search(xml)
    if m is None:
        raise AssertionError(f"reply without {name}: {xml[:200]!r}")
    return m.group(1) if m.group(1) is not None else m.group(2)


def verify(answers: list[tuple[int, bytes]]) -> None:
    """Every answer: 200, a correctly signed encrypted reply to the right user with the
    text its message must get."""
    crypto = MessageCrypto(TOKEN, AES_KEY, APP_ID)
    for status, body in answers:
        xml = body.decode("utf-8", "replace")
        if status != 200 or "<Encrypt>" not in xml:
            raise AssertionError(f"unexpected bot answer {status}: {body[:200]!r}")
        encrypt, k = _field("Encrypt", xml), int(_field("Nonce", xml))
        signature, timestamp = _field("MsgSignature", xml), _field("TimeStamp", xml)
        if not signature_matches(signature, TOKEN, timestamp, str(k), encrypt):
            raise AssertionError(f"reply to message {k}: bad MsgSignature")
        inner = crypto.decrypt(encrypt)
        user, (_, expected) = k % USERS, SCRIPT[(k // USERS) % len(SCRIPT)]
        content = _field("Content", inner)
        if _field("ToUserName", inner) != openid(user) or expected not in content:
            raise AssertionError(f"reply to message {k} ({openid(user)}): {content!r}, expected {expected!r}")
        if expected == SCRIPT[0][1] and (WORKER_ONLY in content) != (user % 2 == 0):
            raise AssertionError(f"help for {openid(user)} does not fit the account: {content!r}")
        if expected == SCRIPT[0][1] and (BIND_HINT in content) != (user % 2 == 1):
            raise AssertionError(f"help for {openid(user)} does not fit the binding: {content!r}")


def run(database_url: str, baselines: dict[str, loadgen.Result], requests: int = 6000) -> list[Row]:
    """Interleaved rounds (bare ``success``, then the bot, ``ROUNDS`` times) so that load
    from other processes on the machine hits both sides alike; the ratio is the median
    of the per-round ratios. ``baselines`` (measured earlier) is shown for reference."""
    env = app_env(
        database_url, WECHAT_TOKEN=TOKEN, WECHAT_APP_ID=APP_ID, WECHAT_AES_KEY=AES_KEY,
        WECHAT_APP_SECRET="bench-secret",  # noqa: S106 (not a real secret)
    )  # fmt: skip
    seed(database_url)
    msg_base = int(time.time()) * 100_000
    per_round = max(requests // 5, 200)
    warm_n = USERS * len(SCRIPT)  # every user once through the whole script
    warm = build_messages(0, warm_n, msg_base)
    msgs = build_messages(warm_n, per_round * ROUNDS, msg_base)
    ok = loadgen.build_request("POST", "/success", b"x")
    ratios, bot_rps, bare_rps, latencies = [], [], [], []
    with gunicorn("bench.baseline:app") as bare_port, gunicorn("wsgi:app", env) as port:
        loadgen.run(bare_port, lambda n: ok, requests=500)
        answers: list[tuple[int, bytes]] = []
        loadgen.run(port, lambda n: warm[n], requests=warm_n, check=lambda s, b: answers.append((s, b)))
        verify(answers)
        cpu = Cpu(bare_port, port)
        for r in range(ROUNDS):
            bare = loadgen.run(bare_port, lambda n: ok, requests=2 * per_round)  # as harness.paired
            chunk, answers = msgs[r * per_round : (r + 1) * per_round], []
            keep = answers.append  # the check runs in the measured loop: just keep the answer
            bot = loadgen.run(
                port, chunk.__getitem__, requests=per_round, check=lambda s, b, k=keep: k((s, b))
            )
            verify(answers)  # after the round: not part of the measured time
            if len(answers) != per_round:
                raise AssertionError(f"round {r}: {len(answers)} of {per_round} messages answered")
            ratios.append(bot.rps / bare.rps)
            bot_rps.append(bot.rps)
            bare_rps.append(bare.rps)
            latencies.extend(bot.latencies_ms)
        bare_us, bot_us = cpu.per_request_us(2 * per_round * ROUNDS, per_round * ROUNDS)
    ratio = statistics.median(ratios)
    p99 = sorted(latencies)[int(0.99 * len(latencies))]
    p50 = statistics.median(latencies)
    return [
        Row(
            "bot: WeChat safe-mode text (paired)",
            statistics.median(bot_rps),
            "msg/s",
            "bare `success`",
            statistics.median(bot_rps) / ratio,
            target=f">= {TARGET_RATIO:.0%}",
            met=ratio >= TARGET_RATIO,
            note=f"median of {ROUNDS} interleaved rounds of {per_round}; ratios "
            f"{' '.join(f'{x:.2f}' for x in ratios)}; all replies decrypted and checked; "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; server CPU per request over the rounds: bare "
            f"{bare_us:.0f} us, bot {bot_us:.0f} us (ratio {bare_us / bot_us:.2f}; Redis' own CPU not "
            f"included); earlier baseline {baselines['success'].rps:.0f} req/s",
        ),
        Row(
            "bot: p99 handling time",
            p99,
            "ms",
            target=f"<= {TARGET_P99_MS:.0f} ms",
            met=p99 <= TARGET_P99_MS,
            note="client-side, 16 connections (queueing included); WeChat waits 5 s",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=6000)
    args = ap.parse_args()
    with gunicorn("bench.baseline:app") as port:
        ok = loadgen.build_request("POST", "/success", b"x")
        loadgen.run(port, lambda n: ok, requests=500)
        success = loadgen.run(port, lambda n: ok, requests=args.requests)
    with bench_database() as url:
        rows = [Row("baseline: bare `success`", success.rps, "req/s", note=f"p99 {success.pct(99):.1f} ms")]
        rows += run(url, {"success": success}, args.requests)
    print_table(rows)


if __name__ == "__main__":
    main()
