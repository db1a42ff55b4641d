"""Login, logout, the current account, binding codes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy import select

from core.api import ANY, PUBLIC, ApiBlueprint, Ctx
from core.pii import mask_mobile
from core.validation import DbId, Model, Out
from models.identity import Identity, Person
from services import auth as svc

bp = ApiBlueprint("auth", __name__, tag="auth", url_prefix="/auth")


class CodeIn(Model):
    code: str = Field(min_length=1, max_length=128, description="小程序 wx.login / 钉钉免登授权码")


class PasswordIn(Model):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenOut(Out):
    token: str
    expires_at: datetime
    person_id: int
    roles: list[str]
    new_account: bool = False


class IdentityOut(Out):
    kind: str
    app_id: str


class MeOut(Out):
    person_id: int
    name: str
    mobile: str | None = Field(None, description="脱敏手机号")
    org_unit_id: int | None
    roles: list[str]
    identities: list[IdentityOut]


class BindingIn(Model):
    person_id: DbId | None = Field(None, description="为他人生成（管理员/培训员/专管员）；省略为本人")


class BindingOut(Out):
    code: str
    expires_at: datetime


def _token_out(t: svc.IssuedToken) -> TokenOut:
    return TokenOut(
        token=t.token,
        expires_at=t.expires_at,
        person_id=t.person_id,
        roles=t.roles,
        new_account=t.new_account,
    )


@bp.post("/wechat", body=CodeIn, response=TokenOut, roles=PUBLIC, extra_errors=(429, 502), rate="login")
def login_wechat(ctx: Ctx) -> TokenOut:
    """小程序登录：code2session 换取本系统令牌"""
    ext = ctx.app.extensions["zhizhi"]
    issued = svc.login_wechat_mp(
        ctx.session,
        ext.wechat_mp(),
        ext.settings.wechat["mp_app_id"] or "",
        ctx.body.code,
        ext.settings.auth_token_ttl,
    )
    return _token_out(issued)


@bp.post("/dingtalk", body=CodeIn, response=TokenOut, roles=PUBLIC, extra_errors=(429, 502), rate="login")
def login_dingtalk(ctx: Ctx) -> TokenOut:
    """钉钉免登：授权码换取 userid，再换取本系统令牌"""
    ext = ctx.app.extensions["zhizhi"]
    issued = svc.login_dingtalk(
        ctx.session,
        ext.dingtalk(),
        ext.settings.dingtalk["app_key"] or "",
        ctx.body.code,
        ext.settings.auth_token_ttl,
    )
    return _token_out(issued)


@bp.post("/password", body=PasswordIn, response=TokenOut, roles=PUBLIC, extra_errors=(429,), rate="login")
def login_password(ctx: Ctx) -> TokenOut:
    """工作人员账号密码登录（连续失败将锁定）"""
    s = ctx.settings
    issued = svc.login_password(
        ctx.session,
        ctx.body.username,
        ctx.body.password,
        ttl=s.auth_token_ttl,
        max_failures=s.login_max_failures,
        lockout_seconds=s.login_lockout_seconds,
    )
    return _token_out(issued)


@bp.post("/logout", roles=ANY)
def logout(ctx: Ctx) -> dict:
    """退出登录：当前令牌立即失效"""
    svc.logout(ctx.session, ctx.me)
    return {"logged_out": True}


@bp.get("/me", response=MeOut, roles=ANY)
def me(ctx: Ctx) -> MeOut:
    """当前账号（手机号脱敏）"""
    person = ctx.session.get(Person, ctx.me.person_id)
    rows = ctx.session.scalars(select(Identity).where(Identity.person_id == person.id))
    idents = [IdentityOut(kind=str(i.kind), app_id=i.app_id) for i in rows]
    return MeOut(
        person_id=person.id,
        name=person.name,
        mobile=mask_mobile(person.mobile) if person.mobile else None,
        org_unit_id=person.org_unit_id,
        roles=sorted(ctx.me.roles),
        identities=idents,
    )


@bp.post(
    "/binding-codes",
    body=BindingIn,
    response=BindingOut,
    roles=ANY,
    status=201,
    idempotent=True,
    rate="binding",
)
def binding_code(ctx: Ctx) -> BindingOut:
    """生成一次性绑定码（30 分钟内在公众号或钉钉发送“绑定 <码>”）"""
    code, expires = svc.binding_code_for(ctx.session, ctx.me, ctx.body.person_id)
    return BindingOut(code=code, expires_at=expires)
