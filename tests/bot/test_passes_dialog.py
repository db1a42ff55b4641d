"""我的通行证 over WeChat: the list with status, the pass card image sent by a job; 查验."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

pytest.importorskip("services.passes.applications")

from services.auth import new_binding_code
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.services.passes.builders import make_world, visitor_body


@pytest.fixture
def citizen_with_pass(app, db, client):
    world = make_world(db, app, datetime.now(UTC))
    citizen = make_person(db, "citizen", name="李居民")
    api = Api(client, token_for(db, citizen))
    res = api.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(11), ring=1))
    assert res.status_code == 201, res.get_json()
    code, _ = new_binding_code(db, citizen.id, None)
    db.flush()
    return world, citizen, code


def test_my_passes_lists_status_and_sends_the_card_image_by_job(
    wx, db, platforms, run_jobs, citizen_with_pass
):
    fake_wechat, _ = platforms
    _world, _citizen, code = citizen_with_pass
    wx.text("o_citizen", f"绑定 {code}")
    res = wx.text("o_citizen", "我的通行证")
    assert "已通过" in res.text and "编号 P" in res.text and "二维码图片稍后发送" in res.text
    assert "李居民" not in res.text  # the list carries no personal data it does not need
    run_jobs()
    uploads = fake_wechat.calls("/cgi-bin/media/upload")
    assert len(uploads) == 1 and uploads[0]["files"]["media"]["data"].startswith(b"\x89PNG")
    # The holder also gets the "pass issued" notification; exactly one image is sent.
    images = [m for m in fake_wechat.messages("custom", "o_citizen") if m["body"]["msgtype"] == "image"]
    assert len(images) == 1 and images[0]["body"]["image"]["media_id"]
    number = re.search(r"P\d{3}-\d{8}", res.text).group(0)
    verdict = wx.text("o_other", f"查验 {number}").text
    assert "有效" in verdict and "李居民" not in verdict and "张三" not in verdict


def test_verify_unknown_pass_number(wx):
    assert "未找到" in wx.text("o_v", "查验 P001-99999999").text
    assert "未找到" in wx.text("o_v", "查验 XYZ123").text


def test_grid_worker_cannot_list_passes(wx, db):
    worker = make_person(db, "grid_worker")
    code, _ = new_binding_code(db, worker.id, None)
    wx.text("o_gw", f"绑定 {code}")
    assert "仅对居民开放" in wx.text("o_gw", "我的通行证").text


def test_event_poster_scene_explains_how_to_apply(wx, db, citizen_with_pass):
    world, _citizen, _code = citizen_with_pass
    text = wx.event("o_poster", "subscribe", f"qrscene_event_{world.event.id}").text
    assert world.event.name in text and "我的通行证" in text
