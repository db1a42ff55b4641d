"""The instant check (智能秒核): every rule yields a reason code; all failures are listed.

``check_transport``/``check_purchase`` only read; the caller decides what to record.
A rule that fails lands in ``failures``; a case a human must see (category 1, a
yellow-coded enterprise) lands in ``review``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models.permits.applications import Permit, PermitStatus
from models.permits.catalogue import Chemical
from models.permits.credentials import Credential, CredentialKind, CredentialStatus
from models.permits.enterprises import Enterprise, EnterpriseStatus, Vehicle
from services.permits import risk_colour, rules
from services.permits.enterprises import is_member

CRED_NAMES = {
    CredentialKind.vehicle_registration: "车辆行驶证（检验有效期）",
    CredentialKind.road_transport: "道路运输证",
    CredentialKind.driving_licence: "驾驶证",
    CredentialKind.driver_qualification: "驾驶员危险货物从业资格证",
    CredentialKind.escort_qualification: "押运员资格证",
    CredentialKind.enterprise_licence: "企业许可/备案",
}


@dataclass
class CheckResult:
    failures: list[dict[str, str]] = field(default_factory=list)
    review: list[dict[str, str]] = field(default_factory=list)
    credentials: list[int] = field(default_factory=list)

    def fail(self, code: str, message: str) -> None:
        self.failures.append({"code": code, "message": message})

    @property
    def passed(self) -> bool:
        return not self.failures


def _latest(session: Session, kind: CredentialKind, **where: int) -> Credential | None:
    stmt = select(Credential).where(Credential.kind == kind, Credential.status != CredentialStatus.revoked)
    for col, value in where.items():
        stmt = stmt.where(getattr(Credential, col) == value)
    return session.scalar(stmt.order_by(Credential.valid_until.desc()).limit(1))


def _trip_credentials(
    session: Session, vehicle_id: int, person_ids: list[int]
) -> dict[tuple[CredentialKind, int], Credential]:
    """Newest credential per (kind, vehicle or person) in one query."""
    rows = session.scalars(
        select(Credential).where(
            Credential.status != CredentialStatus.revoked,
            or_(Credential.vehicle_id == vehicle_id, Credential.person_id.in_(person_ids)),
        )
    )
    out: dict[tuple[CredentialKind, int], Credential] = {}
    for c in rows:
        key = (c.kind, c.vehicle_id if c.vehicle_id is not None else c.person_id)
        if key not in out or c.valid_until > out[key].valid_until:
            out[key] = c
    return out


def _require_valid(
    res: CheckResult, cred: Credential | None, kind: CredentialKind, start: date, end: date
) -> Credential | None:
    name = CRED_NAMES[kind]
    if cred is None:
        res.fail(f"{kind.value}_missing", f"缺少{name}")
        return None
    res.credentials.append(cred.id)
    if cred.status == CredentialStatus.expired or cred.valid_until < end:
        res.fail(f"{kind.value}_expired", f"{name}（{cred.number}）有效期至 {cred.valid_until}，未覆盖运输期")
    elif cred.valid_from and cred.valid_from > start:
        res.fail(f"{kind.value}_not_yet_valid", f"{name}（{cred.number}）尚未生效")
    return cred


def _check_enterprise(session: Session, res: CheckResult, ent: Enterprise, chem: Chemical, on: date) -> None:
    if ent.status == EnterpriseStatus.suspended:
        res.fail("enterprise_suspended", f"{ent.name} 已被暂停业务")
    colour = risk_colour.enterprise_colour(session, ent.id)
    if colour == "red":
        res.fail("enterprise_red_coded", f"{ent.name} 当前为红码，暂停办理")
    elif colour == "yellow":
        res.review.append(
            {"code": "enterprise_yellow_coded", "message": f"{ent.name} 当前为黄码，转人工审核"}
        )
    lic = _latest(session, CredentialKind.enterprise_licence, enterprise_id=ent.id, category=chem.category)
    if lic is None or lic.status == CredentialStatus.expired or lic.valid_until < on:
        res.fail("licence_not_covering", f"{ent.name} 无有效的第{chem.category}类易制毒化学品许可/备案")
    else:
        res.credentials.append(lic.id)


def _check_category(res: CheckResult, purpose: str, chem: Chemical) -> None:
    rule = rules.purpose_rule(purpose, chem.category)
    if rule.decided_by == "regulator":
        res.review.append(
            {"code": "category_requires_regulator", "message": f"第{chem.category}类须由公安机关审批"}
        )


def check_transport(
    session: Session,
    *,
    applicant: Enterprise,
    carrier: Enterprise,
    purchase: Permit,
    chem: Chemical,
    vehicle: Vehicle,
    plate: str,
    driver_id: int,
    escort_id: int | None,
    quantity: Decimal,
    start: date,
    end: date,
) -> CheckResult:
    res = CheckResult()
    creds = _trip_credentials(session, vehicle.id, [p for p in (driver_id, escort_id) if p is not None])
    vk = (CredentialKind.vehicle_registration, CredentialKind.road_transport)
    reg, rtc = (_require_valid(res, creds.get((k, vehicle.id)), k, start, end) for k in vk)
    plates = {vehicle.plate} | {c.plate for c in (reg, rtc) if c is not None and c.plate}
    if plates != {plate}:
        res.fail("plate_mismatch", f"申请车牌 {plate} 与行驶证/道路运输证登记车牌不一致")
    if not is_member(session, carrier.id, driver_id, "driver"):
        res.fail("driver_not_in_carrier", "驾驶员不属于承运企业")
    for kind in (CredentialKind.driving_licence, CredentialKind.driver_qualification):
        _require_valid(res, creds.get((kind, driver_id)), kind, start, end)
    if escort_id is not None:
        kind = CredentialKind.escort_qualification
        _require_valid(res, creds.get((kind, escort_id)), kind, start, end)
    _check_enterprise(session, res, applicant, chem, end)
    if carrier.id != applicant.id and carrier.status == EnterpriseStatus.suspended:
        res.fail("carrier_suspended", f"承运企业 {carrier.name} 已被暂停业务")
    if purchase.status != PermitStatus.valid or purchase.valid_until < end or purchase.valid_from > start:
        res.fail("purchase_permit_not_valid", f"购买许可/备案 {purchase.number} 在运输期内无效")
    if quantity > purchase.remaining:
        res.fail(
            "quantity_over_permit",
            f"运输数量 {quantity} {purchase.unit} 超过购买许可/备案剩余量 "
            f"{purchase.remaining} {purchase.unit}",
        )
    _check_category(res, "transport", chem)
    return res


def check_purchase(
    session: Session, *, buyer: Enterprise, seller: Enterprise, chem: Chemical, on: date
) -> CheckResult:
    res = CheckResult()
    _check_enterprise(session, res, buyer, chem, on)
    lic = _latest(session, CredentialKind.enterprise_licence, enterprise_id=seller.id, category=chem.category)
    if seller.status == EnterpriseStatus.suspended:
        res.fail("seller_suspended", f"销售企业 {seller.name} 已被暂停业务")
    if lic is None or lic.status == CredentialStatus.expired or lic.valid_until < on:
        res.fail(
            "seller_licence_not_covering", f"销售企业 {seller.name} 无有效的第{chem.category}类许可/备案"
        )
    _check_category(res, "purchase", chem)
    return res
