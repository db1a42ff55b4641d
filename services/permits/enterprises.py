"""Enterprises, members and the access checks every permits service calls.

Enterprise A never sees enterprise B's data: reads need a membership of the enterprise
or a regulator grant whose jurisdiction covers the enterprise's org unit; writes need a
membership with one of the named enterprise roles.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import outbox
from core.auth import Actor
from core.errors import Forbidden, NotFound, ValidationFailed
from core.validators import InvalidValue, normalize_uscc
from models.identity import OrgUnit, Person, Role, RoleGrant
from models.permits.enterprises import (
    Enterprise,
    EnterpriseKind,
    Member,
    MemberRole,
    MemberStatus,
    Site,
)

ROLE_NAMES = {"manager": "专管员", "warehouse": "仓库管理员", "sales": "销售业务员", "driver": "驾驶员"}


def get_enterprise(session: Session, enterprise_id: int) -> Enterprise:
    ent = session.get(Enterprise, enterprise_id)
    if ent is None:
        raise NotFound("企业不存在", code="enterprise_not_found")
    return ent


def member_roles(session: Session, actor: Actor, enterprise_id: int) -> set[str]:
    rows = session.scalars(
        select(Member.role).where(
            Member.enterprise_id == enterprise_id,
            Member.person_id == actor.person_id,
            Member.status == MemberStatus.active,
        )
    )
    return {str(r) for r in rows}


def require_member(session: Session, actor: Actor, enterprise_id: int, *roles: str) -> Enterprise:
    """The actor is an active member of the enterprise holding one of ``roles`` (any if none)."""
    ent = get_enterprise(session, enterprise_id)
    if actor.has_role("admin"):
        return ent
    have = member_roles(session, actor, enterprise_id)
    if not have:
        raise Forbidden("您不是该企业的成员", code="not_enterprise_member")
    if roles and not have & set(roles):
        names = "、".join(ROLE_NAMES[r] for r in roles)
        raise Forbidden(f"需要企业角色：{names}", code="enterprise_role_required")
    return ent


def org_path(session: Session, ent: Enterprise) -> str | None:
    if ent.org_unit_id is None:
        return None
    return session.scalar(select(OrgUnit.path).where(OrgUnit.id == ent.org_unit_id))


def is_regulator_of(session: Session, actor: Actor, ent: Enterprise) -> bool:
    return actor.has_any_role(("regulator", "admin")) and actor.covers(org_path(session, ent), "regulator")


def require_reader(session: Session, actor: Actor, enterprise_id: int) -> Enterprise:
    """Members of the enterprise, or regulators whose jurisdiction covers it."""
    ent = get_enterprise(session, enterprise_id)
    if is_regulator_of(session, actor, ent) or member_roles(session, actor, enterprise_id):
        return ent
    raise Forbidden("无权查看其他企业的数据", code="not_enterprise_member")


def require_regulator(session: Session, actor: Actor, ent: Enterprise) -> None:
    if not is_regulator_of(session, actor, ent):
        raise Forbidden("需要管辖该企业的监管部门账号", code="regulator_required")


def register(
    session: Session,
    actor: Actor,
    *,
    name: str,
    uscc: str,
    kind: str,
    org_unit_id: int | None,
    sites: list[str],
) -> Enterprise:
    """Register an enterprise; the registrant becomes its manager (专管员).

    Side effects: enterprise, sites, membership and an ``enterprise`` role grant.
    A credit code already registered is a conflict (not idempotent by design).
    """
    try:
        code = normalize_uscc(uscc)
    except InvalidValue as exc:
        raise ValidationFailed(exc.message, code=exc.code, fields={"uscc": exc.message}) from None
    if kind not in EnterpriseKind.__members__:
        raise ValidationFailed(code="invalid_enterprise_kind", fields={"kind": "企业类型无效"})
    if session.scalar(select(Enterprise.id).where(Enterprise.uscc == code)) is not None:
        raise ValidationFailed(
            "该统一社会信用代码已注册", code="uscc_taken", fields={"uscc": "该统一社会信用代码已注册"}
        )
    if org_unit_id is not None and session.get(OrgUnit, org_unit_id) is None:
        raise ValidationFailed(code="org_unit_not_found", fields={"org_unit_id": "组织不存在"})
    ent = Enterprise(name=name, uscc=code, kind=EnterpriseKind(kind), org_unit_id=org_unit_id)
    session.add(ent)
    session.flush()
    for site_name in sites or ["主厂区"]:
        session.add(Site(enterprise_id=ent.id, name=site_name))
    _add_member(session, ent.id, actor.person_id, MemberRole.manager, None)
    session.flush()
    return ent


def _add_member(session: Session, ent_id: int, person_id: int, role: MemberRole, by: int | None) -> Member:
    member = session.scalar(
        select(Member).where(
            Member.enterprise_id == ent_id, Member.person_id == person_id, Member.role == role
        )
    )
    if member is None:
        member = Member(enterprise_id=ent_id, person_id=person_id, role=role, invited_by_id=by)
        session.add(member)
    member.status = MemberStatus.active
    has_grant = session.scalar(
        select(RoleGrant.id).where(RoleGrant.person_id == person_id, RoleGrant.role == Role.enterprise)
    )
    if has_grant is None:
        session.add(RoleGrant(person_id=person_id, role=Role.enterprise))
    session.flush()
    return member


def add_member(session: Session, actor: Actor, enterprise_id: int, person_id: int, role: str) -> Member:
    """A manager adds a person with an enterprise role; repeating it changes nothing."""
    require_member(session, actor, enterprise_id, "manager")
    if role not in MemberRole.__members__:
        raise ValidationFailed(code="invalid_member_role", fields={"role": "角色无效"})
    if session.get(Person, person_id) is None:
        raise NotFound("人员不存在", code="person_not_found")
    return _add_member(session, enterprise_id, person_id, MemberRole(role), actor.person_id)


def invite_member(session: Session, actor: Actor, enterprise_id: int, person_id: int, role: str) -> Member:
    """A manager invites a person; the role counts only after ``accept_invitation``.

    Side effects: an ``invited`` membership and a notification row (dedup per invitation).
    Inviting someone already active in that role changes nothing.
    """
    require_member(session, actor, enterprise_id, "manager")
    if role not in MemberRole.__members__:
        raise ValidationFailed(code="invalid_member_role", fields={"role": "角色无效"})
    if session.get(Person, person_id) is None:
        raise NotFound("人员不存在", code="person_not_found")
    member = session.scalar(
        select(Member).where(
            Member.enterprise_id == enterprise_id,
            Member.person_id == person_id,
            Member.role == MemberRole(role),
        )
    )
    if member is not None and member.status == MemberStatus.active:
        return member
    if member is None:
        member = Member(enterprise_id=enterprise_id, person_id=person_id, role=MemberRole(role))
        session.add(member)
    member.status, member.invited_by_id = MemberStatus.invited, actor.person_id
    session.flush()
    outbox.add(
        session,
        "permits.notify_person",
        {"person_id": person_id, "text": f"您被邀请担任{ROLE_NAMES[role]}，请在小程序中确认"},
        dedup_key=f"invite:{member.id}:{member.status.value}",
    )
    return member


def accept_invitation(session: Session, actor: Actor, member_id: int) -> Member:
    """The invited person accepts; the membership becomes active (idempotent)."""
    member = session.get(Member, member_id)
    if member is None or member.person_id != actor.person_id:
        raise NotFound("邀请不存在", code="invitation_not_found")
    if member.status == MemberStatus.removed:
        raise Forbidden("邀请已撤销", code="invitation_revoked")
    return _add_member(session, member.enterprise_id, member.person_id, member.role, member.invited_by_id)


def site_of(session: Session, enterprise_id: int, site_id: int | None) -> Site:
    """The enterprise's site ``site_id`` (or its first site)."""
    stmt = select(Site).where(Site.enterprise_id == enterprise_id)
    site = session.scalar(stmt.where(Site.id == site_id) if site_id else stmt.order_by(Site.id))
    if site is None:
        raise ValidationFailed(
            "场所不属于本企业", code="site_not_owned", fields={"site_id": "场所不属于本企业"}
        )
    return site


def is_member(session: Session, enterprise_id: int, person_id: int, role: str) -> bool:
    return (
        session.scalar(
            select(Member.id).where(
                Member.enterprise_id == enterprise_id,
                Member.person_id == person_id,
                Member.role == MemberRole(role),
                Member.status == MemberStatus.active,
            )
        )
        is not None
    )
