"""证照 for enterprise members (expiring credentials, open warnings) and permit 查验."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("services.permits.verify")

from services.auth import new_binding_code
from tests.services.permits.factories import NOW, actor, build_world, purchase


def _mass_balance_warning(db, w):
    """Produce 1000 kg, count 900 at stocktake: the mass-balance rule opens a warning."""
    from decimal import Decimal

    from services.permits import ledger, warnings

    for kind, qty, key in (("produce", "1000", "a"), ("stocktake", "900", "b")):
        ledger.file_event(
            db, actor(db, w.seller_mgr), w.seller.id, kind=kind, chemical_id=w.toluene.id,
            quantity=Decimal(qty), unit="kg", idempotency_key=key, now=NOW,
        )  # fmt: skip
    return warnings.list_for(db, actor(db, w.regulator))[0]


@pytest.fixture
def world(app, db):
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return build_world(
        db, app.extensions["zhizhi"].settings.signing_kek, qualification_until=today + timedelta(days=5)
    )


def _bind(wx, db, person, openid):
    code, _ = new_binding_code(db, person.id, None)
    db.flush()
    assert "绑定成功" in wx.text(openid, f"绑定 {code}").text


def test_carrier_manager_sees_the_qualification_expiring_in_five_days(wx, db, world, run_jobs):
    _bind(wx, db, world.carrier_mgr, "o_carrier")
    text = wx.slow("o_carrier", "证照", run_jobs)
    assert "丙物流" in text and "从业资格证 CYZG-1：5 天后到期" in text
    assert "XSZ-1" not in text  # valid for 200 more days
    assert "没有待处理的预警" in text


def test_seller_manager_sees_the_open_warning_and_not_other_enterprises(wx, db, world, run_jobs):
    w = _mass_balance_warning(db, world)
    _bind(wx, db, world.seller_mgr, "o_seller")
    text = wx.slow("o_seller", "证照", run_jobs)
    assert "甲化工" in text and f"预警 #{w.id}" in text and "待签收" in text
    assert "丙物流" not in text and "乙制药" not in text


def test_permit_number_verifies_without_personal_data(wx, db, world):
    permit = purchase(db, world)
    text = wx.text("o_anyone", f"查验 {permit.number}").text
    assert "有效" in text and permit.number in text and "签发机关" in text
    assert "专管员" not in text


def test_non_member_is_told_to_get_invited(wx, db, world, run_jobs):
    from tests.helpers import make_person

    stranger = make_person(db, "enterprise", name="路人")
    _bind(wx, db, stranger, "o_stranger")
    assert "还不是任何企业的成员" in wx.slow("o_stranger", "证照", run_jobs)


def test_a_permit_expiring_soon_is_listed_with_the_credentials(wx, db, world, run_jobs):
    permit = purchase(db, world)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    permit.valid_until = today + timedelta(days=3)
    db.flush()
    _bind(wx, db, world.buyer_mgr, "o_buyer")
    text = wx.slow("o_buyer", "证照", run_jobs)
    assert f"购买许可证明 {permit.number}：3 天后到期" in text
    permit.valid_until = today + timedelta(days=60)  # outside the 30-day horizon
    db.flush()
    assert permit.number not in wx.slow("o_buyer", "证照", run_jobs)
