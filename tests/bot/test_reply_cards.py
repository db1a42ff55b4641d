"""Link cards: a reply with a URL is a news message on WeChat and an actionCard on
DingTalk; text with "]]>" cannot break out of WeChat's CDATA."""

from __future__ import annotations

from wechatpy import parse_message

from bot import dingtalk, wechat
from bot.engine import Message, Reply

INCOMING = {"ToUserName": "gh_zhizhi", "FromUserName": "o_card"}


def test_a_reply_with_a_url_is_a_news_article_on_wechat():
    xml = wechat.render(
        Reply(text="您的通行证已签发", title="通行证", url="https://example.com/p/1"), INCOMING
    )
    parsed = wechat.parse_xml(xml)
    assert parsed["MsgType"] == "news" and parsed["ArticleCount"] == "1"
    item = parsed["Articles"]["item"]
    assert item == {
        "Title": "通行证",
        "Description": "您的通行证已签发",
        "PicUrl": "",
        "Url": "https://example.com/p/1",
    }
    assert parsed["ToUserName"] == "o_card" and parsed["FromUserName"] == "gh_zhizhi"


def test_cdata_terminators_in_text_stay_text():
    tricky = "a]]><MsgType>news</MsgType>b"
    reply = parse_message(wechat.render(Reply(text=tricky), INCOMING))
    assert reply.type == "text" and reply.content == tricky


def test_links_and_buttons_are_action_cards_on_dingtalk():
    msg = Message("dingtalk", "k", "staff_card", "text", "m:1", raw={"senderStaffId": "staff_card"})
    single = dingtalk.render(Reply(text="详情见链接", title="通行证", url="https://example.com/p/1"), msg)
    assert single == {"msgtype": "actionCard", "actionCard": {"title": "通行证", "text": "详情见链接",
                      "singleTitle": "查看详情", "singleURL": "https://example.com/p/1"}}  # fmt: skip
    buttons = dingtalk.render(
        Reply(text="请选择", buttons=[("同意", "https://a"), ("拒绝", "https://b")]), msg
    )
    card = buttons["actionCard"]
    assert card["btns"] == [
        {"title": "同意", "actionURL": "https://a"},
        {"title": "拒绝", "actionURL": "https://b"},
    ]
    assert dingtalk.render(Reply(text="**粗体**", markdown=True, title="提示"), msg) == {
        "msgtype": "markdown", "markdown": {"title": "提示", "text": "**粗体**"}}  # fmt: skip
