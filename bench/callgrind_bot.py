"""Instructions per WeChat safe-mode message under valgrind's callgrind, beside the bare
Flask ``success`` endpoint: a figure that does not depend on the machine's load.

Each side runs twice in a child process under callgrind: app creation and a warm-up
(every user of bench.bench_bot through the whole script, so identities are cached and
every user's state ends as it started), then either nothing more or ``--messages`` more
(rounded up to whole scripts); the difference of the two totals, divided by the
messages, is the cost of one. User-space instructions only: system calls count as one
instruction each (see bench.profile_bot for CPU time and round trips).
``BENCH_PG`` / ``BENCH_REDIS`` as for ``make bench`` (a few minutes):
``BENCH_REDIS=redis://127.0.0.1:6379/13 .venv/bin/python -m bench.callgrind_bot``
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time

from bench.profile_bot import environ, wsgi_cpu


def child(side: str, count: int) -> None:
    """What runs under callgrind: a warm-up, then ``count`` requests."""
    if side == "bare":
        from bench.baseline import app

        envs = [environ("/success", b"x") for _ in range(300 + count)]
        wsgi_cpu(app, envs[:300])
        if count:
            wsgi_cpu(app, envs[300:])
        return
    from bench import bench_bot as bb
    from bot.crypto import MessageCrypto
    from core.app import create_app

    bb.RUN = os.environ["CG_RUN"]  # the users the parent seeded
    base, now = int(os.environ["CG_BASE"]), int(time.time())
    crypto = MessageCrypto(bb.TOKEN, bb.AES_KEY, bb.APP_ID)
    app = create_app()  # the parent's app_env() and WeChat settings are this process's environment
    warm = [environ(*bb.message(crypto, k, base, now)) for k in range(bb.USERS * len(bb.SCRIPT))]
    measured = [environ(*bb.message(crypto, k, base + len(warm), now)) for k in range(count)]
    answers: list = []
    for envs in (warm, measured):
        got: list = []
        if envs:
            wsgi_cpu(app, envs, got)
        answers += got
    app.extensions["zhizhi"].db.dispose()
    with open(os.environ["CG_ANSWERS"], "wb") as f:  # checked by the parent: not counted here
        pickle.dump(answers, f)


def instructions(side: str, count: int, env: dict[str, str]) -> int:
    """Instructions of one child run; the bot's answers are all checked (bench_bot.verify)."""
    from bench import bench_bot as bb

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "bench.callgrind_bot", "--child", side, "--messages", str(count)]
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out", *cmd],
            env={**env, "CG_ANSWERS": f"{tmp}/answers"}, capture_output=True, text=True, check=False,
        )  # fmt: skip
        m = re.search(r"Collected : (\d+)", out.stderr)
        if out.returncode or m is None:
            raise SystemExit(f"callgrind run failed:\n{out.stderr[-3000:]}")
        if side == "bot":
            with open(f"{tmp}/answers", "rb") as f:
                answers = pickle.load(f)  # noqa: S301 (written by our own child a moment ago)
            if len(answers) != bb.USERS * len(bb.SCRIPT) + count:
                raise SystemExit(f"{len(answers)} answers for {count} messages and the warm-up")
            bb.verify(answers)
    return int(m.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1200)
    parser.add_argument("--child", choices=["bot", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.messages)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")

    from bench import bench_bot as bb
    from bench.harness import ROOT, app_env, bench_database

    script = bb.USERS * len(bb.SCRIPT)
    n = -(-args.messages // script) * script  # whole scripts: every user's state as it started
    with bench_database() as url:
        bb.seed(url)
        env = {**app_env(url), "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT), "CG_RUN": bb.RUN}
        env.update(WECHAT_TOKEN=bb.TOKEN, WECHAT_APP_ID=bb.APP_ID, WECHAT_AES_KEY=bb.AES_KEY)
        base = int(time.time()) * 100_000

        def fresh() -> dict[str, str]:  # distinct MsgIds for every run
            nonlocal base
            base += 10_000_000
            return {**env, "CG_BASE": str(base)}

        first = [sys.executable, "-m", "bench.callgrind_bot", "--child", "bot", "--messages", "0"]
        with tempfile.TemporaryDirectory() as tmp:  # identities loaded once and cached
            subprocess.run(first, env={**fresh(), "CG_ANSWERS": f"{tmp}/answers"}, check=True)
        per = {}
        for side in ("bot", "bare"):
            runs = [instructions(side, k, fresh()) for k in (0, n)]
            per[side] = (runs[1] - runs[0]) / n
            print(f"{side}: {per[side] / 1000:.0f} k instructions per request (over {n})", flush=True)
        print(f"bare/bot: {per['bare'] / per['bot']:.2f}")


if __name__ == "__main__":
    main()
