from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from models.permits.ledger import TripSegment
from models.permits.risk import RiskSignal
from services.permits import risk
from tests.services.permits.factories import NOW

DAY = datetime(2026, 11, 2, 0, 30, tzinfo=UTC)  # 08:30 Asia/Shanghai
NIGHT = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 23:00 Asia/Shanghai


def _h(hours: float, minutes: int = 0) -> timedelta:
    return timedelta(hours=hours, minutes=minutes)


def test_five_hours_continuous_driving_by_day_is_fatigue():
    blocks = risk.fatigue_violations([(DAY, DAY + _h(5))])
    assert len(blocks) == 1 and not blocks[0].night and blocks[0].driving_minutes == 300


def test_three_hours_fifty_with_a_25_minute_rest_is_not_fatigue():
    first = (DAY, DAY + _h(2))
    second = (DAY + _h(2, 25), DAY + _h(4, 15))  # 2 h + 1 h 50 min driving = 3 h 50 min
    assert risk.fatigue_violations([first, second]) == []


def test_a_ten_minute_stop_does_not_reset_the_clock():
    first = (DAY, DAY + _h(2, 30))
    second = (DAY + _h(2, 40), DAY + _h(4, 50))
    assert len(risk.fatigue_violations([first, second])) == 1


def test_two_and_a_half_hours_at_night_is_fatigue():
    assert len(risk.fatigue_violations([(NIGHT, NIGHT + _h(2, 30))])) == 1
    assert risk.fatigue_violations([(DAY, DAY + _h(2, 30))]) == []


def test_fatigue_signal_is_explainable_and_raised_once(db, world):
    db.add(
        TripSegment(
            enterprise_id=world.carrier.id,
            driver_id=world.driver.id,
            vehicle_id=world.vehicle.id,
            started_at=DAY - timedelta(days=1),
            ended_at=DAY - timedelta(days=1) + _h(5),
        )
    )
    db.flush()
    assert risk.evaluate_fatigue(db, world.carrier.id, NOW - timedelta(days=7), NOW) == 1
    risk.evaluate_fatigue(db, world.carrier.id, NOW - timedelta(days=7), NOW)
    sigs = list(db.scalars(select(RiskSignal).where(RiskSignal.model == "fatigue_driving")))
    assert len(sigs) == 1
    sig = sigs[0]
    assert sig.inputs["driving_minutes"] == 300 and sig.threshold["max_minutes"] == 240
    assert sig.rule and sig.reevaluate_at > sig.evaluated_at


def test_overdue_inspection_is_yellow_and_turns_red_once_the_vehicle_is_used(db, world):
    reg = world.creds["reg"]
    reg.valid_until = NOW.date() - timedelta(days=3)
    db.flush()
    assert risk.evaluate_overdue_inspections(db, world.carrier.id, NOW) == 1
    sig = db.scalar(select(RiskSignal).where(RiskSignal.model == "credential_lapse"))
    assert sig.severity.value == "yellow" and sig.inputs["plate"] == "浙F12345"
    day = DAY - timedelta(days=1)
    db.add(
        TripSegment(
            enterprise_id=world.carrier.id,
            driver_id=world.driver.id,
            vehicle_id=world.vehicle.id,
            started_at=day,
            ended_at=day + _h(1),
        )
    )
    db.flush()
    risk.evaluate_enterprise(db, world.carrier.id, NOW)
    assert sig.severity.value == "red"
    from services.permits import risk_colour

    assert risk_colour.enterprise_colour(db, world.carrier.id) == "red"


def test_production_surge_is_raised_then_resolved_on_re_evaluation(db, world):
    from decimal import Decimal

    from services.permits import ledger, risk_colour
    from tests.services.permits.factories import actor

    def produce(days_ago: int, qty: str) -> None:
        at = NOW - timedelta(days=days_ago)
        ledger.file_event(
            db,
            actor(db, world.seller_mgr),
            world.seller.id,
            kind="produce",
            chemical_id=world.toluene.id,
            quantity=Decimal(qty),
            unit="kg",
            idempotency_key=f"d{days_ago}",
            occurred_at=at,
            now=at,
        )

    for d in range(8, 98):
        produce(d, "100")
    for d in range(1, 8):
        produce(d, "500")
    assert risk.evaluate_production_surge(db, world.seller.id, NOW) is True
    sig = db.scalar(select(RiskSignal).where(RiskSignal.model == "production_surge"))
    assert sig.inputs["last_7d"] == "3500.000" and sig.threshold["factor"] == 3.0
    assert risk_colour.enterprise_colour(db, world.seller.id) == "yellow"
    assert risk.evaluate_production_surge(db, world.seller.id, NOW + timedelta(days=30)) is False
    assert risk_colour.enterprise_colour(db, world.seller.id) == "green"
