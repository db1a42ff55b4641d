import uuid

import fakeredis
import pytest
import redis

from core.platforms.dingtalk import DingTalkPlatform, content_fingerprint, dingtalk_error
from core.platforms.http import make_session
from core.platforms.wechat import PlatformError
from tests.fakes.dingtalk import DAILY_LIMIT

pytest_plugins = ["tests.fakes.fixtures"]

REDIS_URL = "redis://127.0.0.1:6379/9"
USER = "manager4711"
SEND = "/topapi/message/corpconversation/asyncsend_v2"
USERINFO = "/topapi/v2/user/getuserinfo"


def text(content: str) -> dict:
    return {"msgtype": "text", "text": {"content": content}}


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


def make_platform(fake, redis_client, ns="test:dingtalk", **kwargs) -> DingTalkPlatform:
    return DingTalkPlatform(
        fake.app_key,
        kwargs.pop("app_secret", fake.app_secret),
        fake.agent_id,
        redis_client,
        make_session(fake.rewrites),
        token_key=f"{ns}:token",
        **kwargs,
    )


@pytest.fixture
def dingtalk(fake_dingtalk, redis_client, ns):
    return make_platform(fake_dingtalk, redis_client, ns)


# -- tokens and login -------------------------------------------------------------------


def test_token_comes_from_gettoken_with_appkey_and_appsecret_and_is_cached(dingtalk, fake_dingtalk):
    dingtalk.send_work_notification(USER, text("a"))
    dingtalk.send_work_notification(USER, text("b"))

    (call,) = fake_dingtalk.calls("/gettoken")
    assert call["method"] == "GET"
    assert call["query"] == {"appkey": fake_dingtalk.app_key, "appsecret": fake_dingtalk.app_secret}


def test_v1_auth_api_is_supported(fake_dingtalk, redis_client, ns):
    platform = make_platform(fake_dingtalk, redis_client, ns, auth_api="v1")

    platform.send_work_notification(USER, text("a"))

    (call,) = fake_dingtalk.calls("/v1.0/oauth2/accessToken")
    assert call["json"] == {"appKey": fake_dingtalk.app_key, "appSecret": fake_dingtalk.app_secret}
    assert fake_dingtalk.calls("/gettoken") == []


def test_v1_auth_api_wrong_secret_is_reported(fake_dingtalk, redis_client, ns):
    platform = make_platform(fake_dingtalk, redis_client, ns, auth_api="v1", app_secret="bad")

    with pytest.raises(PlatformError) as info:
        platform.send_work_notification(USER, text("a"))

    assert info.value.errcode == 400 and not info.value.transient


def test_wrong_appsecret_fails_with_40089(fake_dingtalk, redis_client, ns):
    platform = make_platform(fake_dingtalk, redis_client, ns, app_secret="bad")

    with pytest.raises(PlatformError) as info:
        platform.userid_by_auth_code("c1")

    assert info.value.errcode == 40089


def test_gettoken_is_retried_on_a_5xx(dingtalk, fake_dingtalk):
    fake_dingtalk.fail_next("/gettoken", http_status=503)

    dingtalk.send_work_notification(USER, text("a"))

    assert len(fake_dingtalk.calls("/gettoken")) == 2


def test_userid_by_auth_code_posts_the_code_and_returns_the_user(dingtalk, fake_dingtalk):
    fake_dingtalk.add_code("auth1", USER, unionid="union1", name="张三")

    user = dingtalk.userid_by_auth_code("auth1")

    assert user == {"userid": USER, "unionid": "union1", "name": "张三"}
    call = fake_dingtalk.calls(USERINFO)[0]
    assert call["method"] == "POST" and call["json"] == {"code": "auth1"}
    assert call["query"]["access_token"]


def test_auth_code_is_single_use_and_unknown_is_permanent_40078(dingtalk, fake_dingtalk):
    fake_dingtalk.add_code("auth1", USER)
    dingtalk.userid_by_auth_code("auth1")

    with pytest.raises(PlatformError) as info:
        dingtalk.userid_by_auth_code("auth1")

    assert info.value.errcode == 40078 and info.value.permanent


def test_expired_token_is_refreshed_and_the_call_retried_once(dingtalk, fake_dingtalk):
    dingtalk.send_work_notification(USER, text("a"))
    fake_dingtalk.expire_tokens()

    dingtalk.send_work_notification(USER, text("b"))

    assert fake_dingtalk.token_fetches == 2
    assert [c["response"]["errcode"] for c in fake_dingtalk.calls(SEND)] == [0, 42001, 0]


def test_errcode_88_with_token_sub_code_is_refreshed_too(dingtalk, fake_dingtalk):
    fake_dingtalk.fail_next(SEND, 88, "ding talk error[subcode=40014]", sub_code="40014")

    dingtalk.send_work_notification(USER, text("a"))

    assert len(fake_dingtalk.calls(SEND)) == 2
    assert fake_dingtalk.token_fetches == 2


def test_token_error_surviving_one_refresh_is_transient(dingtalk, fake_dingtalk):
    fake_dingtalk.fail_next(SEND, 40014, "不合法的access_token", times=3)

    with pytest.raises(PlatformError) as info:
        dingtalk.send_work_notification(USER, text("a"))

    assert info.value.transient and len(fake_dingtalk.calls(SEND)) == 2


@pytest.mark.parametrize(
    ("errcode", "sub_code", "transient", "permanent"),
    [
        (-1, None, True, False),
        (90018, None, True, False),
        (143103, None, True, False),
        (88, "60011", False, True),
        (40056, None, False, True),
        (33012, None, False, True),
    ],
)
def test_send_errors_are_classified(dingtalk, fake_dingtalk, errcode, sub_code, transient, permanent):
    extra = {"sub_code": sub_code} if sub_code else {}
    fake_dingtalk.fail_next(SEND, errcode, "boom", **extra)

    with pytest.raises(PlatformError) as info:
        dingtalk.send_work_notification(USER, text("a"))

    assert (info.value.transient, info.value.permanent) == (transient, permanent)
    assert info.value.sub_code == sub_code


# -- work notifications ---------------------------------------------------------------


def test_work_notification_posts_documented_fields_and_returns_task_id(dingtalk, fake_dingtalk):
    msg = {"msgtype": "markdown", "markdown": {"title": "证照到期", "text": "### 7 天后到期"}}

    task_id = dingtalk.send_work_notification(USER, msg)

    call = fake_dingtalk.calls(SEND)[0]
    assert call["json"] == {"agent_id": fake_dingtalk.agent_id, "userid_list": USER, "msg": msg}
    assert fake_dingtalk.delivered[0]["task_id"] == task_id
    assert dingtalk.get_send_result(task_id)["unread_user_id_list"] == [USER]


def test_same_content_same_day_is_accepted_but_not_delivered(dingtalk, fake_dingtalk):
    first = dingtalk.send_work_notification(USER, text("明天 9:00 检查"))
    second = dingtalk.send_work_notification(USER, text("明天 9:00 检查"))

    assert first != second
    assert len(fake_dingtalk.delivered) == 1
    result = dingtalk.get_send_result(second)
    assert result["forbidden_list"] == [{"code": "143106", "count": 1, "userid": USER}]
    assert result["forbidden_user_id_list"] == [USER]


def test_same_content_is_delivered_again_the_next_day(dingtalk, fake_dingtalk):
    now = fake_dingtalk.clock()
    dingtalk.send_work_notification(USER, text("daily"))
    fake_dingtalk.clock = lambda: now + 86400

    dingtalk.send_work_notification(USER, text("daily"))

    assert len(fake_dingtalk.delivered) == 2


def test_over_the_daily_quota_is_accepted_but_not_delivered(dingtalk, fake_dingtalk):
    assert fake_dingtalk.daily_limit == DAILY_LIMIT == 500
    fake_dingtalk.daily_limit = 3
    for i in range(3):
        dingtalk.send_work_notification(USER, text(f"m{i}"))

    task_id = dingtalk.send_work_notification(USER, text("one too many"))

    assert len(fake_dingtalk.delivered) == 3
    assert dingtalk.get_send_result(task_id)["forbidden_list"] == [
        {"code": "143105", "count": 3, "userid": USER}
    ]
    assert fake_dingtalk.sent_today(USER) == 3


def test_unsupported_msgtype_is_rejected_before_sending(dingtalk, fake_dingtalk):
    with pytest.raises(ValueError):
        dingtalk.send_work_notification(USER, {"msgtype": "sticker", "sticker": {}})

    assert fake_dingtalk.calls(SEND) == []


def test_content_fingerprint_ignores_key_order_but_not_content():
    a = {"msgtype": "text", "text": {"content": "x"}}
    b = {"text": {"content": "x"}, "msgtype": "text"}

    assert content_fingerprint(a) == content_fingerprint(b)
    assert content_fingerprint(a) != content_fingerprint(text("y"))


def test_platform_works_with_fakeredis(fake_dingtalk):
    platform = make_platform(fake_dingtalk, fakeredis.FakeRedis())

    assert platform.send_work_notification(USER, text("a")) > 0


def test_classification_of_88_uses_sub_code():
    assert dingtalk_error(88, "", "60011").permanent
    assert dingtalk_error(88, "", "42001").transient
    assert not dingtalk_error(88, "", None).transient
