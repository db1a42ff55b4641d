"""Builders for pass-domain tests: an event with three rings and gates with devices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.auth import load_actor
from models.passes import Event, Gate
from services.passes import events
from tests.helpers import make_person, token_for

KEK = None  # tests read the app's settings.signing_kek


@dataclass
class World:
    event: Event
    officer_token: str
    officer: object
    gates: dict[str, Gate]
    device_tokens: dict[str, str]


def make_world(db, app, now: datetime, *, policy: dict | None = None, capacity: int | None = None) -> World:
    from services.passes import checks, gate

    # Process-wide caches are keyed by row ids, which a rolled-back test may reuse.
    gate.contexts.clear()
    checks.verified_tokens.clear()
    kek = app.extensions["zhizhi"].settings.signing_kek
    officer_person = make_person(db, "officer", name="钱警官")
    officer = load_actor(db, officer_person.id)
    zones = [
        events.ZoneSpec(1, "外围区", daily_capacity_visitor=capacity),
        events.ZoneSpec(2, "管控区"),
        events.ZoneSpec(3, "核心区"),
    ]
    event = events.create_event(
        db,
        officer,
        name="世界互联网大会乌镇峰会",
        starts_at=now - timedelta(hours=2),
        ends_at=now + timedelta(days=3),
        zones=zones,
        kek=kek,
        policy={"min_lead_hours": 0, **(policy or {})},
    )
    gates, tokens = {}, {}
    for label, ring, direction in (
        ("outer_in", 1, "in"),
        ("outer_out", 1, "out"),
        ("core_in", 3, "in"),
        ("outer_in2", 1, "in"),
    ):
        device = make_person(db, "gate", name=f"闸机{label}")
        gates[label] = events.add_gate(
            db,
            officer,
            event.id,
            name=label,
            ring=ring,
            direction=direction,
            device_person_id=device.id,
            fail_closed=False,
        )
        tokens[label] = token_for(db, device)
    return World(event, token_for(db, officer_person), officer, gates, tokens)


def visitor_body(id_number: str, *, ring: int = 1, day=None, **over) -> dict:
    from zoneinfo import ZoneInfo

    day = day or datetime.now(ZoneInfo("Asia/Shanghai")).date()
    body = {
        "kind": "visitor",
        "name": "张三",
        "id_number": id_number,
        "mobile": "13812345678",
        "purpose": "参加峰会论坛",
        "host_unit": "峰会组委会",
        "visit_from": day.isoformat(),
        "visit_to": day.isoformat(),
        "ring": ring,
    }
    body.update(over)
    return body
