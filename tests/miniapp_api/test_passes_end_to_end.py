"""Acceptance: apply → auto-approve → card rendered by a job → QR from the card PNG
scanned at gates (ok, wrong_zone, already_inside) → revoked → ``revoked``."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import zxingcpp
from PIL import Image
from sqlalchemy import func, select

from models.jobs import Notification
from models.passes import Passage, ScanRefusal
from models.platform import OutboxItem
from tests.helpers import Api, valid_id_number
from tests.services.passes.builders import make_world, visitor_body


def scan(api: Api, token: str, qr: str, nonce: str | None = None, direction: str = "in") -> dict:
    body = {
        "qr": qr,
        "nonce": nonce or uuid.uuid4().hex,
        "scanned_at": datetime.now(UTC).isoformat(),
        "direction": direction,
    }
    resp = api.post("/passes/gate/scan", body, token=token)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["data"]


def test_citizen_pass_from_application_to_revoked_scan(app, db, client, run_jobs, platforms):
    from jobs.passes import flush_passages

    world = make_world(db, app, datetime.now(UTC))
    wechat, _ = platforms
    wechat.add_code("wx-code-1", "openid-citizen-1")
    login = Api(client).post("/auth/wechat", {"code": "wx-code-1"})
    assert login.status_code == 200, login.get_json()
    assert login.get_json()["data"]["roles"] == ["citizen"]
    api = Api(client, login.get_json()["data"]["token"])

    resp = api.post(
        f"/passes/events/{world.event.id}/applications",
        visitor_body(valid_id_number(1)),
        headers={"Idempotency-Key": "apply-1"},
    )
    assert resp.status_code == 201, resp.get_json()
    application = resp.get_json()["data"]
    assert application["status"] == "approved"
    assert application["rules"] is None and application["result_message"] == "审核通过"
    officer = Api(client, world.officer_token)
    stored = officer.get(f"/passes/applications/{application['id']}").get_json()["data"]["rules"]
    assert [r["rule"] for r in stored] == [
        "identity", "plate", "dates", "duplicate", "capacity", "watchlist", "trust",
    ]  # fmt: skip

    run_jobs()  # card rendered, then the holder notified
    notice = db.scalars(select(OutboxItem).where(OutboxItem.kind == "passes.notify_holder")).one()
    assert notice.result["to_person"] == login.get_json()["data"]["person_id"]
    note = db.get(Notification, notice.result["notification_id"])
    assert note.person_id == notice.result["to_person"] and note.kind == "passes.issued"
    assert "通行证已签发" in note.content["text"]
    detail = api.get(f"/passes/applications/{application['id']}").get_json()["data"]
    card_url = detail["passes"][0]["card_png"]
    assert card_url is not None
    png = client.get(card_url, headers={"Authorization": f"Bearer {api.token}"})
    assert png.status_code == 200 and png.mimetype == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    qr = decoded[0].text
    assert qr == detail["passes"][0]["token"]

    first_nonce = uuid.uuid4().hex
    tokens = world.device_tokens
    assert scan(api, tokens["outer_in"], qr, first_nonce)["result"] == "ok"
    assert scan(api, tokens["core_in"], qr)["reason"] == "wrong_zone"
    again = scan(api, tokens["outer_in"], qr)
    assert again["reason"] == "already_inside"
    replay = scan(api, tokens["outer_in"], qr, first_nonce)
    assert replay["result"] == "ok" and replay["replayed"] is True

    pass_id = detail["passes"][0]["id"]
    resp = api.post(f"/passes/passes/{pass_id}/revoke", {"reason": "证件遗失"}, token=world.officer_token)
    assert resp.status_code == 200, resp.get_json()

    assert scan(api, tokens["outer_in"], qr)["reason"] == "revoked"  # would have been already_inside
    assert scan(api, tokens["outer_in"], qr, first_nonce)["reason"] == "revoked"  # would have been a replay

    flush_passages(app)
    assert db.scalar(select(func.count()).select_from(Passage)) == 1
    reasons = sorted(db.scalars(select(ScanRefusal.reason)))
    assert reasons == ["already_inside", "revoked", "revoked", "wrong_zone"]
