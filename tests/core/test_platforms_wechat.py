import uuid

import fakeredis
import pytest
import redis

from core.platforms.http import ERRCODE_HTTP_STATUS, ERRCODE_NETWORK, make_session
from core.platforms.wechat import PlatformError, WeChatPlatform, wechat_error

pytest_plugins = ["tests.fakes.fixtures"]

REDIS_URL = "redis://127.0.0.1:6379/9"
OPENID = "o_user_1"
TEMPLATE = "TPL_expiry"
SEND = "/cgi-bin/message/template/send"


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def ns(redis_client):
    """A key namespace of this test only; concurrent runs sharing db 9 cannot collide."""
    prefix = f"test:{uuid.uuid4().hex}"
    yield prefix
    for key in redis_client.scan_iter(f"{prefix}*"):
        redis_client.delete(key)


@pytest.fixture
def wechat(fake_wechat, redis_client, ns):
    return WeChatPlatform(
        fake_wechat.app_id,
        fake_wechat.secret,
        redis_client,
        make_session(fake_wechat.rewrites),
        token_key=f"{ns}:token",
    )


# -- code2session ---------------------------------------------------------------------


def test_code2session_returns_identity_without_fetching_a_token(wechat, fake_wechat):
    fake_wechat.add_code("c1", OPENID, "u_union")

    result = wechat.code2session("c1")

    assert result["openid"] == OPENID and result["unionid"] == "u_union"
    assert result["session_key"]
    query = fake_wechat.calls("/sns/jscode2session")[0]["query"]
    assert query == {
        "appid": fake_wechat.app_id,
        "secret": fake_wechat.secret,
        "js_code": "c1",
        "grant_type": "authorization_code",
    }
    assert fake_wechat.token_fetches == 0


def test_code2session_without_unionid_gives_none(wechat, fake_wechat):
    fake_wechat.add_code("c1", OPENID)

    assert wechat.code2session("c1")["unionid"] is None


@pytest.mark.parametrize(
    ("errcode", "transient"), [(40029, False), (40226, False), (45011, True), (-1, True)]
)
def test_code2session_errors_are_classified(wechat, fake_wechat, errcode, transient):
    fake_wechat.add_code("c1", OPENID)
    fake_wechat.fail_next("/sns/jscode2session", errcode, "boom")

    with pytest.raises(PlatformError) as info:
        wechat.code2session("c1")

    assert info.value.errcode == errcode
    assert info.value.transient is transient
    assert info.value.permanent is not transient


def test_code2session_second_use_of_a_code_is_40163_and_unknown_is_40029(wechat, fake_wechat):
    fake_wechat.add_code("c1", OPENID)
    wechat.code2session("c1")

    with pytest.raises(PlatformError) as used:
        wechat.code2session("c1")
    with pytest.raises(PlatformError) as unknown:
        wechat.code2session("nope")

    assert used.value.errcode == 40163 and used.value.permanent
    assert unknown.value.errcode == 40029 and unknown.value.permanent


def test_code2session_is_not_retried_on_a_5xx(wechat, fake_wechat):
    fake_wechat.add_code("c1", OPENID)
    fake_wechat.fail_next("/sns/jscode2session", http_status=503)

    with pytest.raises(PlatformError) as info:
        wechat.code2session("c1")

    assert info.value.errcode == ERRCODE_HTTP_STATUS and info.value.transient
    assert len(fake_wechat.calls("/sns/jscode2session")) == 1


# -- template / subscribe -------------------------------------------------------------


def test_send_template_posts_wechat_fields_and_returns_msgid(wechat, fake_wechat):
    fake_wechat.add_user(OPENID)

    msgid = wechat.send_template(
        OPENID,
        TEMPLATE,
        {"thing1": "许可证", "time2": {"value": "2025-01-01", "color": "#173177"}},
        url="https://example.org/p/1",
        miniprogram={"appid": "wx_mini", "pagepath": "pages/pass?id=1"},
        client_msg_id="expiry:42:7",
    )

    call = fake_wechat.calls(SEND)[0]
    assert call["query"]["access_token"]
    assert call["json"] == {
        "touser": OPENID,
        "template_id": TEMPLATE,
        "url": "https://example.org/p/1",
        "miniprogram": {"appid": "wx_mini", "pagepath": "pages/pass?id=1"},
        "client_msg_id": "expiry:42:7",
        "data": {
            "thing1": {"value": "许可证"},
            "time2": {"value": "2025-01-01", "color": "#173177"},
        },
    }
    assert msgid == fake_wechat.messages("template")[0]["msgid"]


def test_token_is_fetched_once_for_many_calls(wechat, fake_wechat):
    fake_wechat.add_user(OPENID)
    for _ in range(3):
        wechat.send_template(OPENID, TEMPLATE, {"thing1": "x"})

    assert fake_wechat.token_fetches == 1


def test_expired_token_is_refreshed_and_the_call_retried_once(wechat, fake_wechat):
    fake_wechat.add_user(OPENID)
    wechat.send_template(OPENID, TEMPLATE, {"thing1": "a"})
    fake_wechat.expire_tokens()

    wechat.send_template(OPENID, TEMPLATE, {"thing1": "b"})

    assert fake_wechat.token_fetches == 2
    responses = [c["response"].get("errcode") for c in fake_wechat.calls(SEND)]
    assert responses == [0, 42001, 0]
    assert len(fake_wechat.messages("template")) == 2


def test_token_error_surviving_one_refresh_is_transient_and_not_looped(wechat, fake_wechat):
    fake_wechat.add_user(OPENID)
    fake_wechat.fail_next(SEND, 40001, "invalid credential", times=5)

    with pytest.raises(PlatformError) as info:
        wechat.send_template(OPENID, TEMPLATE, {"thing1": "a"})

    assert info.value.errcode == 40001 and info.value.transient
    assert len(fake_wechat.calls(SEND)) == 2


@pytest.mark.parametrize(
    ("errcode", "transient", "permanent"),
    [
        (-1, True, False),
        (45009, True, False),
        (40003, False, True),
        (40037, False, True),
        (47003, False, True),
        (48001, False, True),
        (43004, False, True),
    ],
)
def test_send_template_errors_are_classified(wechat, fake_wechat, errcode, transient, permanent):
    fake_wechat.add_user(OPENID)
    fake_wechat.fail_next(SEND, errcode, "boom")

    with pytest.raises(PlatformError) as info:
        wechat.send_template(OPENID, TEMPLATE, {"thing1": "a"})

    assert (info.value.errcode, info.value.transient, info.value.permanent) == (
        errcode,
        transient,
        permanent,
    )


def test_unknown_openid_is_permanent_40003(wechat, fake_wechat):
    with pytest.raises(PlatformError) as info:
        wechat.send_template("o_stranger", TEMPLATE, {"thing1": "a"})

    assert info.value.errcode == 40003 and info.value.permanent


def test_subscribe_message_spends_a_credit_and_then_gets_43101(wechat, fake_wechat):
    fake_wechat.grant_subscription(OPENID, TEMPLATE, 1)

    wechat.send_subscribe(OPENID, TEMPLATE, {"thing1": "明日到访"}, page="pages/pass/index")
    with pytest.raises(PlatformError) as info:
        wechat.send_subscribe(OPENID, TEMPLATE, {"thing1": "again"})

    call = fake_wechat.calls("/cgi-bin/message/subscribe/send")[0]
    assert call["json"] == {
        "touser": OPENID,
        "template_id": TEMPLATE,
        "page": "pages/pass/index",
        "data": {"thing1": {"value": "明日到访"}},
        "lang": "zh_CN",
    }
    assert info.value.errcode == 43101 and info.value.permanent
    assert len(fake_wechat.messages("subscribe")) == 1


def test_subscribe_without_template_id_is_40037(wechat, fake_wechat):
    fake_wechat.grant_subscription(OPENID, TEMPLATE, 1)

    with pytest.raises(PlatformError) as info:
        wechat.send_subscribe(OPENID, "", {"thing1": "x"})

    assert info.value.errcode == 40037 and info.value.permanent


# -- customer-service messages, media, menu ---------------------------------------------


def test_custom_text_inside_the_48h_window_is_sent(wechat, fake_wechat):
    fake_wechat.touch_user(OPENID)

    wechat.send_custom_text(OPENID, "你好")

    assert fake_wechat.messages("custom")[0]["body"] == {
        "touser": OPENID,
        "msgtype": "text",
        "text": {"content": "你好"},
    }


def test_custom_text_after_48h_is_permanent_45015(wechat, fake_wechat):
    fake_wechat.touch_user(OPENID, at=fake_wechat.clock() - 48 * 3600 - 1)

    with pytest.raises(PlatformError) as info:
        wechat.send_custom_text(OPENID, "late")

    assert info.value.errcode == 45015 and info.value.permanent
    assert fake_wechat.messages("custom") == []


def test_upload_image_is_multipart_and_its_media_id_can_be_sent(wechat, fake_wechat):
    fake_wechat.touch_user(OPENID)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64

    media_id = wechat.upload_image(png)
    wechat.send_custom_image(OPENID, media_id)

    upload = fake_wechat.calls("/cgi-bin/media/upload")[0]
    assert upload["query"]["type"] == "image"
    assert upload["headers"]["Content-Type"].startswith("multipart/form-data")
    assert upload["files"]["media"]["data"] == png
    assert upload["files"]["media"]["content_type"] == "image/png"
    assert fake_wechat.messages("custom")[0]["body"]["image"] == {"media_id": media_id}


def test_custom_image_with_unknown_media_is_permanent(wechat, fake_wechat):
    fake_wechat.touch_user(OPENID)

    with pytest.raises(PlatformError) as info:
        wechat.send_custom_image(OPENID, "no-such-media")

    assert info.value.errcode == 40007 and info.value.permanent


def test_create_menu_stores_the_menu(wechat, fake_wechat):
    menu = {"button": [{"type": "click", "name": "每日一练", "key": "DAILY_PRACTICE"}]}

    wechat.create_menu(menu)

    assert fake_wechat.menu == menu


# -- tokens, transport ------------------------------------------------------------------


def test_wrong_secret_is_neither_transient_nor_permanent(fake_wechat, redis_client, ns):
    platform = WeChatPlatform(
        fake_wechat.app_id, "wrong", redis_client, make_session(fake_wechat.rewrites), token_key=f"{ns}:t"
    )
    fake_wechat.add_user(OPENID)

    with pytest.raises(PlatformError) as info:
        platform.send_template(OPENID, TEMPLATE, {"thing1": "a"})

    assert info.value.errcode == 40125
    assert not info.value.transient and not info.value.permanent


def test_unreachable_platform_is_a_transient_network_error(redis_client, ns):
    session = make_session({"https://api.weixin.qq.com": "http://127.0.0.1:9"})
    platform = WeChatPlatform("wx", "secret", redis_client, session, token_key=f"{ns}:t")

    with pytest.raises(PlatformError) as info:
        platform.send_custom_text(OPENID, "x")

    assert info.value.errcode == ERRCODE_NETWORK and info.value.transient
    assert not info.value.ambiguous  # connection refused: nothing reached WeChat


def test_platform_works_with_fakeredis(fake_wechat):
    platform = WeChatPlatform(
        fake_wechat.app_id,
        fake_wechat.secret,
        fakeredis.FakeRedis(),
        make_session(fake_wechat.rewrites),
    )
    fake_wechat.add_user(OPENID)

    assert platform.send_template(OPENID, TEMPLATE, {"thing1": "a"}) > 0


def test_classification_table():
    assert wechat_error(-1, "").transient
    assert wechat_error(45011, "").transient
    assert wechat_error(42001, "").transient
    for code in (40003, 43101, 40029, 40226, 40037, 47003, 45015, 48001):
        err = wechat_error(code, "")
        assert err.permanent and not err.transient
