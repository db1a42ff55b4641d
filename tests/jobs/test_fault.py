"""Fault test: 200 jobs (certificate renders + WeChat sends), the RQ worker SIGKILLed mid-run
and a private Redis restarted (queue contents lost). Afterwards every outbox row is done or
failed with a reason, nothing reached the fake WeChat server twice and no file exists twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

pytest.importorskip("core.files")
pytest.importorskip("jobs.render.pass_card")

from core import outbox
from core.db import utcnow
from jobs.maintenance import reconcile
from models.identity import Identity, IdentityKind
from models.jobs import Notification, NotificationStatus, StoredDocument
from models.platform import OutboxItem, OutboxStatus
from services.notify import notify
from tests.helpers import make_person
from tests.jobs.kinds import DATA

pytestmark = [
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
        reason="workers in other processes need PostgreSQL",
    ),
]

N_SENDS = N_RENDERS = 100
N_BAD_OPENIDS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test only (no persistence: a restart loses every queue)."""

    def __init__(self, tmp) -> None:
        self.port, self.dir, self.proc = _free_port(), tmp, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        for _ in range(100):
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def _counts(session) -> Counter:
    session.expire_all()
    return Counter(
        dict(session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status)).all())
    )


def _kill_tree(pid: int) -> None:
    """SIGKILL the worker and its work-horse (RQ puts the horse in its own process group)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    for victim in [pid, *map(int, out.split())]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def _slow_sends(fake, seconds: float) -> None:
    """Template sends take a while, so the kill lands in the middle of one."""
    path = "/cgi-bin/message/template/send"
    original = fake._routes[path][0]

    def slow(req):
        time.sleep(seconds)
        return original(req)

    fake.route(path, slow, ("POST",))


def _running_kinds(session) -> set[str]:
    session.expire_all()
    return set(session.scalars(select(OutboxItem.kind).where(OutboxItem.status == OutboxStatus.running)))


def _worker(env: dict, queues: list[str], burst: bool) -> subprocess.Popen:
    args = [sys.executable, "-m", "jobs.worker", "--no-periodic", "--queues", *queues]
    return subprocess.Popen(args + (["--burst"] if burst else []), env=env, start_new_session=True)


def test_kill_and_redis_restart_lose_nothing_and_send_nothing_twice(
    app, committed_db, test_env, fake_wechat, tmp_path
) -> None:
    from core.app import create_app

    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    env = {
        **os.environ,
        **test_env,
        "REDIS_URL": redis_server.url,
        "FILE_STORE_DIR": str(tmp_path / "files"),
        "WECHAT_API_BASE": fake_wechat.base_url,
        "WECHAT_APP_ID": fake_wechat.app_id,
        "WECHAT_APP_SECRET": fake_wechat.secret,
        "JOB_MODULES": "tests.jobs.certificates,tests.jobs.kinds",
        "QUEUE_PREFIX": f"fault{os.getpid()}:",
    }
    app2 = create_app(
        {
            k: env[k]
            for k in (
                *test_env,
                "REDIS_URL",
                "FILE_STORE_DIR",
                "WECHAT_API_BASE",
                "WECHAT_APP_ID",
                "WECHAT_APP_SECRET",
                "QUEUE_PREFIX",
            )
        }
    )
    ext = app2.extensions["zhizhi"]
    queues = [f"{env['QUEUE_PREFIX']}certificates", f"{env['QUEUE_PREFIX']}notifications"]
    s = ext.db.sessionmaker()
    worker = None
    try:
        with app2.app_context():
            from services import keys
            from tests.jobs.certificates import SCOPE

            keys.signing_ring(s, SCOPE, ext.settings.signing_kek)
            for i in range(N_SENDS):
                p = make_person(s, "citizen")
                openid = f"o_fault_{i}"
                s.add(Identity(person_id=p.id, kind=IdentityKind.wechat_oa, app_id="oa", external_id=openid))
                if i < N_SENDS - N_BAD_OPENIDS:  # the last few have invalid openids
                    fake_wechat.add_user(openid)
                notify(s, p.id, "test.reminder", DATA, f"fault:{i}")
                doc = "permit" if i % 2 else "card"
                outbox.add(s, "test.certificate", {"subject_id": 1000 + i, "owner": p.id, "doc": doc})
            ext.commit(s)  # enqueues all 200 on the private Redis

        _slow_sends(fake_wechat, 0.2)
        worker = _worker(env, queues, burst=False)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill once 60 are done and a send is in flight
            if _counts(s)[OutboxStatus.done] >= 60 and "push.send" in _running_kinds(s):
                break
            time.sleep(0.01)
        _kill_tree(worker.pid)
        worker.wait()
        time.sleep(0.3)  # the in-flight HTTP request, if it got out, is answered by now
        mid = _counts(s)
        killed = s.scalars(select(OutboxItem).where(OutboxItem.status == OutboxStatus.running)).all()
        assert 0 < mid[OutboxStatus.done] < 200 and any(k.kind == "push.send" for k in killed), mid

        redis_server.stop()  # every queued job is gone
        redis_server.start()

        # Time passes: rows whose worker died are now past their timeout.
        s.execute(
            update(OutboxItem)
            .where(OutboxItem.status == OutboxStatus.running)
            .values(started_at=utcnow() - timedelta(hours=1))
        )
        s.commit()
        for _ in range(6):
            reconcile(app2)
            subprocess.run(
                [sys.executable, "-m", "jobs.worker", "--no-periodic", "--burst", "--queues", *queues],
                env=env,
                check=True,
                timeout=300,
            )
            if not (_counts(s)[OutboxStatus.pending] + _counts(s)[OutboxStatus.running]):
                break

        # The send killed mid-flight is failed with the reason, never sent again.
        for k in killed:
            s.refresh(k)
            if k.kind == "push.send":
                assert k.status == OutboxStatus.failed and "中断" in k.last_error

        # Every row is done, or failed with a reason.
        rows = s.scalars(select(OutboxItem)).all()
        assert len(rows) == 200
        assert {r.status for r in rows} <= {OutboxStatus.done, OutboxStatus.failed}
        assert all(r.last_error for r in rows if r.status == OutboxStatus.failed)
        certs = [r for r in rows if r.kind == "test.certificate"]
        assert all(r.status == OutboxStatus.done for r in certs)

        # Nothing delivered twice; the record matches what the platform received.
        sent = fake_wechat.messages("template")
        assert max(Counter(m["touser"] for m in sent).values()) == 1
        notes = s.scalars(select(Notification)).all()
        delivered = {n.recipient for n in notes if n.status == NotificationStatus.sent}
        assert delivered <= {m["touser"] for m in sent}
        bad = [
            n
            for n in notes
            if n.recipient in {f"o_fault_{i}" for i in range(N_SENDS - N_BAD_OPENIDS, N_SENDS)}
        ]
        assert all(n.status == NotificationStatus.failed and "40003" in n.error for n in bad)
        assert all(
            n.status == NotificationStatus.failed and n.error
            for n in notes
            if n.status != NotificationStatus.sent
        )

        # One file per document, none twice, no orphan.
        docs = s.scalars(select(StoredDocument)).all()
        assert len(docs) == N_RENDERS // 2 * 2 + N_RENDERS // 2  # card: PNG + PDF; permit: PDF
        files = [p for p in (tmp_path / "files").rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]
        keys_on_disk = sorted(str(p.relative_to(tmp_path / "files")) for p in files)
        assert sorted(d.file_key for d in docs) == keys_on_disk
        assert len({d.sha256 for d in docs}) == len(docs)
        print(f"\nafter the kill: {dict(mid)}; final: {dict(_counts(s))}; sent {len(sent)} templates")
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        s.close()
        redis_server.stop()
        ext.db.dispose()
