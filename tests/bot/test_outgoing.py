"""Reply length caps and late replies that keep their form (bot.outgoing)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import dingtalk, wechat
from bot.engine import Message, Reply
from bot.jobs import enqueue_reply, enqueue_text
from bot.outgoing import CUT_NOTE, WECHAT_TEXT_BYTES, fit_bytes, fit_chars

LINE = "第{}名 网格员张三 社区：乌镇镇北栅社区 积分 1234 分\n"
LONG = "".join(LINE.format(i) for i in range(200))  # ~10 KB of UTF-8


def _wx(openid: str, text: str = "排行") -> Message:
    return Message(
        "wechat", "wx_test_app", openid, "text", f"m:{openid}", text=text, created_at=1_790_000_000
    )


def _dt(staff: str, msg_id: str, text: str, created_at: int) -> Message:
    return Message("dingtalk", "k", staff, "text", f"m:{msg_id}", text=text, created_at=created_at)


def test_a_short_text_is_left_alone():
    assert fit_bytes("您好") == "您好"
    assert fit_chars("您好") == "您好"


def test_a_long_text_is_cut_at_a_line_break_within_the_limit_and_says_so():
    cut = fit_bytes(LONG)
    assert len(cut.encode()) <= WECHAT_TEXT_BYTES
    assert cut.endswith(CUT_NOTE)
    assert cut[: -len(CUT_NOTE)].endswith("积分 1234 分")  # a whole line, not half of one
    assert LONG.startswith(cut[: -len(CUT_NOTE)])


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=3000), st.integers(min_value=64, max_value=4096))
def test_any_text_fits_its_byte_limit(text, limit):
    out = fit_bytes(text, limit)
    assert len(out.encode()) <= limit
    if len(text.encode()) <= limit:
        assert out == text


def test_passive_replies_keep_to_the_platform_limits():
    xml = wechat.render(Reply(text=LONG), {"ToUserName": "gh_1", "FromUserName": "o_1"})
    content = xml.split("<Content><![CDATA[", 1)[1].split("]]></Content>", 1)[0]
    assert len(content.encode()) <= WECHAT_TEXT_BYTES and content.endswith(CUT_NOTE)
    body = dingtalk.render(Reply(text=LONG), Message("dingtalk", "k", "s1", "text", "m:1"))
    assert len(body["text"]["content"]) <= 2048


def test_a_long_late_reply_is_cut_so_wechat_takes_it(platforms, db, run_jobs):
    fake_wechat, _ = platforms
    fake_wechat.touch_user("o_long")
    enqueue_text(db, _wx("o_long"), LONG, key="long1")
    db.flush()
    assert [o for _, o in run_jobs()] == ["done"]  # uncut, WeChat answers 45002
    (sent,) = fake_wechat.messages("custom", "o_long")
    content = sent["body"]["text"]["content"]
    assert len(content.encode()) <= WECHAT_TEXT_BYTES and content.endswith(CUT_NOTE)


def test_a_late_reply_with_a_link_goes_out_as_one_news_article_on_wechat(platforms, db, run_jobs):
    fake_wechat, _ = platforms
    fake_wechat.touch_user("o_card")
    reply = Reply(text="您的通行证已生成", title="通行证", url="https://example.cn/pass/7")
    enqueue_reply(db, _wx("o_card"), reply, key="card1")
    db.flush()
    assert [o for _, o in run_jobs()] == ["done"]
    (sent,) = fake_wechat.messages("custom", "o_card")
    assert sent["body"]["msgtype"] == "news"
    (article,) = sent["body"]["news"]["articles"]
    assert article["title"] == "通行证" and article["url"] == "https://example.cn/pass/7"
    assert article["description"] == "您的通行证已生成"


def test_late_dingtalk_cards_and_markdown_keep_their_form(platforms, db, run_jobs):
    _, fake_dingtalk = platforms
    enqueue_reply(
        db, _dt("staff1", "1", "证照", 0), Reply(text="详见", title="证照", url="https://x.cn/a"), "d1"
    )
    buttons = [("查看", "https://x.cn/b"), ("续期", "https://x.cn/c")]
    enqueue_reply(db, _dt("staff1", "2", "证照", 0), Reply(text="两项", title="证照", buttons=buttons), "d2")
    enqueue_reply(
        db, _dt("staff1", "3", "排行", 0), Reply(text="**第1名**", title="排行", markdown=True), "d3"
    )
    db.flush()
    assert [o for _, o in run_jobs()] == ["done"] * 3
    by_type = {r["msg"]["msgtype"]: r["msg"] for r in fake_dingtalk.delivered}
    assert set(by_type) == {"action_card", "markdown"}
    cards = [r["msg"]["action_card"] for r in fake_dingtalk.delivered if r["msg"]["msgtype"] == "action_card"]
    single = next(c for c in cards if "single_url" in c)
    assert single["single_url"] == "https://x.cn/a" and single["markdown"].startswith("详见")
    listed = next(c for c in cards if "btn_json_list" in c)
    assert listed["btn_json_list"] == [{"title": t, "action_url": u} for t, u in buttons]
    assert by_type["markdown"]["markdown"]["text"].startswith("**第1名**")


def test_the_same_late_answer_to_two_dingtalk_messages_in_a_day_is_delivered_twice(platforms, db, run_jobs):
    """DingTalk drops a same-content work notification to the same user on the same day."""
    _, fake_dingtalk = platforms
    enqueue_text(db, _dt("staff2", "a", "积分", 1_790_000_000), "您的积分：120", key="s1")
    enqueue_text(db, _dt("staff2", "b", "积分", 1_790_000_600), "您的积分：120", key="s2")
    db.flush()
    run_jobs()
    assert fake_dingtalk.forbidden == []
    texts = [r["msg"]["text"]["content"] for r in fake_dingtalk.delivered if r["userid"] == "staff2"]
    assert len(texts) == 2 and all(
        t.startswith("您的积分：120") and "积分" in t.split("\n")[-1] for t in texts
    )
