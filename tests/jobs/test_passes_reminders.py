"""The day-before-visit reminder: once per application (or group) with an active pass,
through the notify service, from the periodic table's 17:00 row."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.auth import load_actor
from jobs.periodic import latest_slot, periodic_table, run_due
from jobs.reminders import local_today
from jobs.schedule import passes_visit_reminders
from models.identity import Identity, IdentityKind
from models.jobs import Notification
from models.passes import PassCredential
from services.passes import applications, events, issuance
from tests.helpers import make_person, valid_id_number
from tests.services.passes.builders import make_world

MOBILE = "13812345678"
TZ = ZoneInfo("Asia/Shanghai")


def _citizen(db, external_id: str):
    person = make_person(db, "citizen")
    db.add(Identity(person_id=person.id, kind=IdentityKind.dingtalk, app_id="d", external_id=external_id))
    db.flush()
    return load_actor(db, person.id)


def _apply(app, db, world, citizen, seed: int, day: date, **vehicle):
    data = applications.ApplicationInput(
        person=applications.PersonInput("王五", valid_id_number(seed), MOBILE),
        purpose="参会", host_unit="组委会", visit_from=day, visit_to=day, ring=1,
        **vehicle,
    )  # fmt: skip
    kek = app.extensions["zhizhi"].settings.signing_kek
    return applications.create(db, citizen, world.event.id, data, kek=kek)


def _reminders(db) -> list[Notification]:
    return list(
        db.scalars(
            select(Notification).where(Notification.kind == "passes.visit_reminder").order_by(Notification.id)
        )
    )


def test_each_holder_is_reminded_once_the_day_before_the_visit(app, db):
    now = datetime.now(UTC)
    world = make_world(db, app, now)
    today = local_today(now)
    tomorrow = today + timedelta(days=1)
    alice, bob = _citizen(db, "u-alice"), _citizen(db, "u-bob")
    visitor = _apply(app, db, world, alice, 1, tomorrow)
    vehicle = _apply(
        app, db, world, bob, 2, tomorrow,
        plate="浙F·12345", plate_colour="blue", driving_licence="330483199001011234",
    )  # fmt: skip
    _apply(app, db, world, alice, 3, today)  # today: too late for a day-before reminder
    later = _apply(app, db, world, alice, 4, today + timedelta(days=2))  # not yet
    cancelled = _apply(app, db, world, alice, 5, tomorrow)
    applications.cancel(db, alice, cancelled.id)
    revoked = _apply(app, db, world, bob, 6, tomorrow)
    issuance.revoke(db, issuance.active_pass(db, revoked.id), reason="lost")
    assert {a.status.value for a in (visitor, vehicle, later, revoked)} == {"approved"}

    result = passes_visit_reminders(db, now)
    assert result == {"due": 3, "reminders": 2, "queued": 2}  # the revoked pass: no reminder
    sent = _reminders(db)
    assert [(n.person_id, n.dedup_key) for n in sent] == [
        (alice.person_id, f"pass-visit:{visitor.id}:{tomorrow.isoformat()}"),
        (bob.person_id, f"pass-visit:{vehicle.id}:{tomorrow.isoformat()}"),
    ]
    text = sent[0].content["text"]
    assert text.startswith(f"您明天（{tomorrow.month}月{tomorrow.day}日）前往世界互联网大会乌镇峰会")
    assert "外围区" in text and "00:00—24:00" in text
    assert sent[1].content["text"].startswith("您登记的车辆 浙F1**45明天")
    for n in sent:
        assert valid_id_number(1) not in str(n.content) and MOBILE not in str(n.content)
        assert n.status.value != "failed"

    again = passes_visit_reminders(db, now)  # a retry or a second scheduler
    assert again == {"due": 3, "reminders": 2, "queued": 0}
    assert len(_reminders(db)) == 2
    # A re-issued pass is still the same visit: no second reminder.
    issuance.reissue(db, world.officer, issuance.active_pass(db, visitor.id).id, ring=None, kek=_kek(app))
    assert passes_visit_reminders(db, now)["queued"] == 0


def _kek(app) -> bytes:
    return app.extensions["zhizhi"].settings.signing_kek


def test_a_group_gets_one_reminder_with_its_size(app, db):
    now = datetime.now(UTC)
    world = make_world(db, app, now)
    tomorrow = local_today(now) + timedelta(days=1)
    leader = _citizen(db, "u-leader")
    members = [
        applications.ApplicationInput(
            person=applications.PersonInput(f"成员{i}", valid_id_number(20 + i), MOBILE),
            purpose="考察",
            host_unit="组委会",
            visit_from=tomorrow,
            visit_to=tomorrow,
            ring=1,
        )
        for i in range(3)
    ]
    applications.create_group(db, leader, world.event.id, "嘉兴考察团", members, kek=_kek(app))
    assert passes_visit_reminders(db, now)["queued"] == 1
    (n,) = _reminders(db)
    assert n.person_id == leader.person_id
    assert n.content["text"].startswith("您的团组“嘉兴考察团”（3 人）明天")


def test_the_periodic_row_runs_at_17_00_once_per_slot(app, db, run_jobs):
    entry = {p.name: p for p in periodic_table()}["passes_visit_reminders"]
    real_now = datetime.now(UTC)
    today = local_today(real_now)
    now = datetime(today.year, today.month, today.day, 17, 1, tzinfo=TZ).astimezone(UTC)
    assert latest_slot(entry, now) == now - timedelta(minutes=1)  # 17:00 Shanghai
    world = make_world(db, app, real_now - timedelta(days=1))
    visit = today + timedelta(days=1)
    citizen = _citizen(db, "u-periodic")
    application = _apply(app, db, world, citizen, 30, visit)
    assert db.scalar(select(PassCredential.id).where(PassCredential.application_id == application.id))
    db.flush()

    assert dict(run_due(app, now))["passes_visit_reminders"] == "started"
    assert dict(run_due(app, now))["passes_visit_reminders"] == "already"
    run_jobs()
    (n,) = _reminders(db)
    assert n.person_id == citizen.person_id


def test_tomorrow_is_counted_in_each_events_own_time_zone(app, db):
    # 17:00 in Shanghai on 10 December is 23:00 on 9 December in Honolulu: there the
    # visit "tomorrow" is on the 10th, while for a Shanghai event it is on the 11th.
    now = datetime(2026, 12, 10, 17, 0, tzinfo=TZ).astimezone(UTC)
    applied_at = now - timedelta(days=3)
    officer = load_actor(db, make_person(db, "officer").id)
    citizen = _citizen(db, "u-zones")
    apps = {}
    for zone in ("Pacific/Honolulu", "Asia/Shanghai"):
        event = events.create_event(
            db, officer, name=f"峰会（{zone}）", starts_at=applied_at, ends_at=now + timedelta(days=5),
            zones=[events.ZoneSpec(1, "外围区")], kek=_kek(app), timezone=zone, policy={"min_lead_hours": 0},
        )  # fmt: skip
        for seed, day in ((len(apps) * 10 + 1, date(2026, 12, 10)), (len(apps) * 10 + 2, date(2026, 12, 11))):
            data = applications.ApplicationInput(
                person=applications.PersonInput("王五", valid_id_number(seed), MOBILE),
                purpose="参会", host_unit="组委会", visit_from=day, visit_to=day, ring=1,
            )  # fmt: skip
            made = applications.create(db, citizen, event.id, data, kek=_kek(app), now=applied_at)
            assert made.status.value == "approved", [r.reason_code for r in made.rule_results]
            apps[(zone, day.day)] = made

    assert passes_visit_reminders(db, now)["queued"] == 2
    reminded = {n.dedup_key for n in _reminders(db)}
    assert reminded == {
        f"pass-visit:{apps[('Pacific/Honolulu', 10)].id}:2026-12-10",
        f"pass-visit:{apps[('Asia/Shanghai', 11)].id}:2026-12-11",
    }
