"""Policy parameters and reason codes of the pass domain, as versioned data.

Sources: design/passes.md ("Automatic verification", "Gate check"); thresholds agreed
with the event security office for the Wuzhen summit model (2026 edition). A change
of any value bumps ``RULE_SET["version"]``; each application stores the version that
judged it.
"""

from __future__ import annotations

RULE_SET: dict = {
    "version": "2026.1",
    "source": "design/passes.md; 乌镇峰会安保通行证办理规定（演示版）",
    "min_age": 0,
    "max_age": 100,
    # Applications close this many hours before the first visit day starts and open
    # this many days ahead.
    "min_lead_hours": 12,
    "max_lead_days": 60,
    "max_group_size": 30,
    "max_visit_days": 31,
    # After this many accepted passages without an alert, the subject is trusted.
    "trust_after_clean_passages": 6,
    "trust_days": 30,
    # Scan nonce answers are kept this long (a device retry arrives within minutes).
    "nonce_ttl_seconds": 2 * 24 * 3600,
    "scan_leeway_seconds": 60,
}

#: Keys an event's ``policy`` may override, with their allowed range (inclusive).
EVENT_POLICY_BOUNDS: dict[str, tuple[int, int]] = {
    "min_age": (0, 120),
    "max_age": (0, 150),
    "min_lead_hours": (0, 30 * 24),
    "max_lead_days": (0, 366),
}
EVENT_POLICY_KEYS = frozenset(EVENT_POLICY_BOUNDS)

#: Application rules in evaluation order: code -> Chinese explanation of a failure.
APPLICATION_RULES: dict[str, str] = {
    "identity": "身份证号码校验不通过或年龄不在允许范围内",
    "plate": "车牌号码或颜色不符合 GA 36 规定",
    "dates": "来访日期不在活动期间内，或不满足提前办理时限",
    "duplicate": "同一人员/车辆在重叠日期已有申请",
    "capacity": "所选区域在来访日期的通行证名额已满",
    "watchlist": "命中关注名单",
    "trust": "信任名单",
}

#: Rule result reason codes with their Chinese explanation (stable; stored per result).
RULE_REASONS: dict[str, str] = {
    "ok": "通过",
    "not_applicable": "不适用",
    "age_out_of_range": "年龄不在允许范围内",
    "invalid_resident_id": "身份证号码校验位或出生日期错误",
    "invalid_plate": "车牌号码或颜色错误",
    "outside_event": "来访日期不在活动期间内",
    "too_late": "已超过办理时限（需提前至少 {min_lead_hours} 小时）",
    "too_early": "距来访日期过远（最多提前 {max_lead_days} 天），暂不受理",
    "duplicate_application": "重叠日期已有申请",
    "capacity_full": "该区域当日名额已满",
    "watch_exact_reject": "命中关注名单（拒绝通行）",
    "watch_exact_alert": "命中关注名单（放行并预警）",
    "watch_partial": "姓名与出生日期疑似命中关注名单，需人工审核",
    "trusted": "信任名单人员，免人工审核",
    "trusted_suppressed": "信任名单人员，同类预警已抑制并计数",
    "not_trusted": "不在信任名单",
}

#: Rules whose failure is about the applicant's own input or the event (dates, capacity):
#: a citizen sees their reason. The watch and trust lists' results are for officers only.
CITIZEN_VISIBLE_RULES = ("identity", "plate", "dates", "duplicate", "capacity")

#: What a citizen sees of the outcome (the rule results stay with the officers).
CITIZEN_OUTCOMES: dict[str, str] = {
    "approved": "审核通过",
    "manual_review": "需人工审核，请耐心等待",
    "rejected": "未通过审核，如有疑问请联系主办方",
    "cancelled": "已取消",
}

#: Gate reason codes (design/passes.md, "Gate check") with what the guard sees. Check
#: order: invalid, unknown_key, revoked, not_yet_valid/expired, wrong_zone, wrong_lane,
#: holder_mismatch, watchlist, then already_inside/capacity (anti-passback, occupancy);
#: offline_closed only at an offline gate that fails closed.
GATE_REASONS: dict[str, str] = {
    "invalid": "二维码无效：格式或签名错误",
    "unknown_key": "二维码签名密钥未知或已吊销",
    "revoked": "通行证已作废",
    "not_yet_valid": "通行证尚未生效",
    "expired": "通行证已过期",
    "wrong_zone": "通行证不含本区域通行权限",
    "wrong_lane": "通行证类型与通道不符：人员证请走人行通道，车辆证请走车辆通道",
    "holder_mismatch": "证件与持证人/车辆不符",
    "watchlist": "命中关注名单，请民警处置",
    "already_inside": "该证已在区域内（防回传），请先出场",
    "capacity": "区域人数已达上限",
    "offline_closed": "核心区闸机离线时不放行，请联系值守民警",
}

#: Finer explanations under a gate reason code (``detail`` in the answer).
GATE_DETAILS: dict[str, str] = {
    "wrong_event": "二维码不属于本活动",
    "wrong_kind": "二维码不是通行证",
    "truncated": "二维码不完整",
    "bad_signature": "二维码签名错误",
    "person_at_vehicle_lane": "人员通行证不能在车辆通道使用",
    "vehicle_at_person_gate": "车辆通行证不能在人行通道使用",
    "plate_mismatch": "车牌与通行证登记的车辆不符",
    # The holder's daily time slot (application time window), in the event's time zone;
    # under ``not_yet_valid`` / ``expired``. Exits are not held to it.
    "before_daily_window": "今日通行时段尚未开始，请在申请的时段内入场",
    "after_daily_window": "今日通行时段已结束，请在申请的时段内入场",
}

#: Gate refusals that need a guard's attention (the rest are routine).
ATTENTION_REASONS = frozenset({"revoked", "holder_mismatch", "watchlist", "invalid", "unknown_key"})
