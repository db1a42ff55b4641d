from __future__ import annotations

from sqlalchemy import select

from models.permits.enterprises import Enterprise
from models.permits.risk import RiskSignal, SignalStatus
from services.demo import foundation
from services.demo import permits as demo
from services.permits import risk_colour


def test_every_planted_anomaly_produces_its_signal_and_the_documented_colour(app, db):
    settings = app.extensions["zhizhi"].settings
    foundation.seed(db, settings)
    demo.seed(db, settings)
    by_key = {}
    for key, name, *_ in demo.ENTERPRISES:
        by_key[key] = db.scalar(select(Enterprise).where(Enterprise.name == name))
    for key, model, severity, _how in demo.PLANTED:
        sig = db.scalar(
            select(RiskSignal).where(
                RiskSignal.enterprise_id == by_key[key].id,
                RiskSignal.model == model,
                RiskSignal.status == SignalStatus.open,
            )
        )
        assert sig is not None, (key, model)
        assert sig.severity.value == severity and sig.rule and sig.threshold
    planted = {(k, m) for k, m, *_ in demo.PLANTED}
    unexpected = [
        (k, s.model)
        for k, e in by_key.items()
        for s in db.scalars(select(RiskSignal).where(RiskSignal.enterprise_id == e.id))
        if (k, s.model) not in planted
    ]
    assert unexpected == []
    assert {k: risk_colour.enterprise_colour(db, e.id) for k, e in by_key.items()} == demo.EXPECTED_COLOURS
    assert demo.seed(db, settings)[0].endswith("already seeded")
