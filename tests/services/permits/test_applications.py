from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.errors import ValidationFailed
from models.permits.applications import Application, ApplicationStatus, Permit, PermitForm
from services.permits import applications, verify
from tests.services.permits.factories import NOW, TODAY, actor, build_world, purchase, transport


def _permits(db) -> int:
    return db.scalar(select(func.count(Permit.id)))


def test_category_3_purchase_filing_is_issued_at_once(db, world):
    permit = purchase(db, world)
    assert permit.form == PermitForm.filing
    assert permit.number.startswith("YZGB3")
    assert permit.remaining == Decimal("1000")
    assert verify.by_token(db, permit.token, now=NOW)["status"] == "valid"


def test_transport_with_expired_driver_qualification_is_refused_with_that_reason(db, kek):
    w = build_world(db, kek, qualification_until=TODAY - timedelta(days=1))
    pp = purchase(db, w)
    before = _permits(db)
    with pytest.raises(ValidationFailed) as err:
        transport(db, w, pp)
    assert err.value.code == "instant_check_failed"
    codes = [r["code"] for r in err.value.details["reasons"]]
    assert codes == ["driver_qualification_expired"]
    assert _permits(db) == before
    refused = db.scalar(select(Application).order_by(Application.id.desc()))
    assert refused.status == ApplicationStatus.refused


def test_every_failing_rule_is_listed(db, kek):
    w = build_world(db, kek, qualification_until=TODAY - timedelta(days=1))
    pp = purchase(db, w)
    with pytest.raises(ValidationFailed) as err:
        transport(db, w, pp, quantity=Decimal("1500"), plate="浙F99999")
    codes = {r["code"] for r in err.value.details["reasons"]}
    assert codes == {"driver_qualification_expired", "plate_mismatch", "quantity_over_permit"}


def test_category_3_transport_filing_is_issued_at_once_with_valid_credentials(db, world):
    pp = purchase(db, world)
    app, permit = transport(db, world, pp)
    assert app.status == ApplicationStatus.issued
    assert permit.form == PermitForm.filing
    assert permit.valid_until == TODAY + timedelta(days=2)


def test_quantity_over_remaining_purchase_permit_is_refused(db, world):
    pp = purchase(db, world, quantity=Decimal("500"))
    with pytest.raises(ValidationFailed) as err:
        transport(db, world, pp, quantity=Decimal("501"))
    assert [r["code"] for r in err.value.details["reasons"]] == ["quantity_over_permit"]


def test_category_1_goes_to_regulator_queue_and_decision_is_audited(db, world):
    _app, permit = applications.apply_purchase(
        db,
        actor(db, world.buyer_mgr),
        enterprise_id=world.buyer.id,
        seller_enterprise_id=world.seller.id,
        chemical_id=world.ephedrine.id,
        quantity=Decimal("10"),
        unit="kg",
        kek=world.kek,
        now=NOW,
    )
    assert permit is None
    reg = actor(db, world.regulator)
    queue = applications.review_queue(db, reg)
    assert [a.id for a in queue] == [_app.id]
    app, permit = applications.decide(db, reg, _app.id, approve=True, note="材料齐全", kek=world.kek, now=NOW)
    assert app.status == ApplicationStatus.approved and permit.form == PermitForm.permit
    with pytest.raises(Exception) as err:
        applications.decide(db, reg, _app.id, approve=True, note="again", kek=world.kek, now=NOW)
    assert err.value.code == "application_not_pending"


def test_vehicle_of_another_enterprise_is_refused_before_any_check(db, world):
    pp = purchase(db, world)
    from services.permits import credentials

    other = credentials.add_vehicle(db, actor(db, world.seller_mgr), world.seller.id, "浙F54321", "yellow")
    with pytest.raises(ValidationFailed) as err:
        transport(db, world, pp, vehicle_id=other.id)
    assert err.value.code == "credential_not_owned"


@pytest.mark.parametrize(
    ("quantity", "unit", "code"),
    [
        (Decimal("0"), "kg", "invalid_quantity"),
        (Decimal("-5"), "kg", "invalid_quantity"),
        (Decimal("5"), "L", "unit_mismatch"),
    ],
)
def test_bad_quantity_or_unit_is_refused(db, world, quantity, unit, code):
    with pytest.raises(ValidationFailed) as err:
        applications.apply_purchase(
            db,
            actor(db, world.buyer_mgr),
            enterprise_id=world.buyer.id,
            seller_enterprise_id=world.seller.id,
            chemical_id=world.toluene.id,
            quantity=quantity,
            unit=unit,
            kek=world.kek,
            now=NOW,
        )
    assert err.value.code == code


def test_revoked_permit_verifies_as_revoked_and_is_listed(db, world):
    from core.errors import Conflict, Forbidden
    from services.permits import revocation

    permit = purchase(db, world)
    with pytest.raises(Forbidden):
        revocation.revoke(db, actor(db, world.buyer_mgr), permit.id, "自行吊销", now=NOW)
    revocation.revoke(db, actor(db, world.regulator), permit.id, "违规转让", now=NOW)
    assert verify.by_number(db, permit.number, now=NOW)["status"] == "revoked"
    assert verify.by_token(db, permit.token, now=NOW)["status"] == "revoked"
    assert permit.id in [r["object_id"] for r in revocation.revocation_list(db)["revoked"]]
    with pytest.raises(Conflict):
        revocation.revoke(db, actor(db, world.regulator), permit.id, "again", now=NOW)


def test_expired_permit_verifies_as_expired(db, world):
    permit = purchase(db, world)
    assert verify.by_number(db, permit.number, now=NOW + timedelta(days=200))["status"] == "expired"


def test_regulator_cannot_approve_when_a_credential_lapsed_while_queued(db, world):
    from services.permits.signals import raise_signal

    pp = purchase(db, world)

    # A yellow code routes the transport application to the regulator queue.
    raise_signal(db, world.buyer.id, "consumption_anomaly", "x", rule="r", inputs={}, threshold={}, now=NOW)
    app, permit = transport(db, world, pp)
    assert app.status == ApplicationStatus.pending_review and permit is None
    world.creds["dq"].valid_until = TODAY
    db.flush()
    with pytest.raises(Exception) as err:
        applications.decide(
            db, actor(db, world.regulator), app.id, approve=True, note="ok", kek=world.kek, now=NOW
        )
    assert err.value.code == "checks_no_longer_pass"
    assert [r["code"] for r in err.value.details["reasons"]] == ["driver_qualification_expired"]
