"""`python -m jobs.scheduler`: start periodic rows when their slot comes (Asia/Shanghai).

`make worker` starts one next to the RQ workers (``jobs.worker``); running several (one
per machine) is safe: each slot is started once (see ``jobs.periodic``). Without a
long-running process, cron can call ``flask jobs run-due`` every minute instead.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time

from jobs.periodic import run_due

log = logging.getLogger("zhizhi.jobs")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tick", type=float, default=15.0, help="seconds between checks")
    parser.add_argument("--once", action="store_true", help="check once and exit")
    args = parser.parse_args(argv)

    from jobs.context import get_app

    app = get_app()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    while True:
        try:
            started = [name for name, outcome in run_due(app) if outcome == "started"]
            if started:
                log.info("periodic started: %s", ", ".join(started))
        except Exception:
            log.exception("periodic check failed; next tick retries")
        if args.once or stop["now"]:
            return
        deadline = time.monotonic() + args.tick
        while time.monotonic() < deadline and not stop["now"]:
            time.sleep(0.5)


if __name__ == "__main__":
    main()
