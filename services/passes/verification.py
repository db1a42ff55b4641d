"""Automatic verification (后台自动核验): an ordered rule list, every result stored.

Each rule returns ``(outcome, reason_code)`` with outcome ``pass``, ``reject``,
``review`` (manual review), ``alert`` (let through, officers alerted) or ``skip``.
The trust rule runs last: a trusted subject skips manual review and has alerts of the
same kind suppressed (counted), but a ``reject`` always stands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.validators import InvalidValue, age_on, normalize_plate, normalize_resident_id
from models.passes import Application, ApplicationKind, ApplicationStatus, Event, RuleResult, Zone
from services.passes import lists
from services.passes.rules import (
    CITIZEN_OUTCOMES,
    CITIZEN_VISIBLE_RULES,
    EVENT_POLICY_BOUNDS,
    RULE_REASONS,
    RULE_SET,
)


def policy(event: Event) -> dict:
    """The rule set with the event's overrides, each clamped into its allowed range (an
    event stored before the ranges were enforced still judges applications)."""
    out = dict(RULE_SET)
    for name, value in (event.policy or {}).items():
        if name in EVENT_POLICY_BOUNDS and isinstance(value, int) and not isinstance(value, bool):
            low, high = EVENT_POLICY_BOUNDS[name]
            out[name] = min(max(value, low), high)
    return out


@dataclass
class Check:
    session: Session
    event: Event
    app: Application
    now: datetime
    policy: dict
    watch_hits: list = field(default_factory=list)  # (entry, outcome)

    @property
    def today(self) -> date:
        return self.now.astimezone(ZoneInfo(self.event.timezone)).date()


def _identity(c: Check) -> str:
    try:
        normalize_resident_id(c.app.id_number, today=c.today)
    except InvalidValue:
        return "reject:invalid_resident_id"
    age = age_on(c.app.id_number, c.today)
    if not c.policy["min_age"] <= age <= c.policy["max_age"]:
        return "reject:age_out_of_range"
    return "pass:ok"


def _plate(c: Check) -> str:
    if c.app.kind != ApplicationKind.vehicle:
        return "skip:not_applicable"
    try:
        normalize_plate(c.app.plate or "", c.app.plate_colour or "")
    except InvalidValue:
        return "reject:invalid_plate"
    return "pass:ok"


def _dates(c: Check) -> str:
    tz = ZoneInfo(c.event.timezone)
    if (
        c.app.visit_from < c.event.starts_at.astimezone(tz).date()
        or c.app.visit_to > c.event.ends_at.astimezone(tz).date()
    ):
        return "reject:outside_event"
    hh, mm = (int(x) for x in c.app.time_from.split(":"))
    first = datetime.combine(c.app.visit_from, datetime.min.time(), tz) + timedelta(hours=hh, minutes=mm)
    if first - c.now < timedelta(hours=c.policy["min_lead_hours"]):
        # Same-day desks (min_lead_hours 0) may still issue while the window is open.
        last = visit_end(c.event, c.app)
        if c.policy["min_lead_hours"] > 0 or c.now >= last:
            return "reject:too_late"
    if (c.app.visit_from - c.today).days > c.policy["max_lead_days"]:
        return "reject:too_early"
    return "pass:ok"


def visit_start(event: Event, app: Application) -> datetime:
    tz = ZoneInfo(event.timezone)
    hh, mm = (int(x) for x in app.time_from.split(":"))
    return datetime.combine(app.visit_from, datetime.min.time(), tz) + timedelta(hours=hh, minutes=mm)


def visit_end(event: Event, app: Application) -> datetime:
    tz = ZoneInfo(event.timezone)
    hh, mm = (int(x) for x in app.time_to.split(":"))
    return datetime.combine(app.visit_to, datetime.min.time(), tz) + timedelta(hours=hh, minutes=mm)


def _duplicate(c: Check) -> str:
    from services.passes.applications import find_duplicate

    dup = find_duplicate(
        c.session, c.event.id, c.app.subject_index, c.app.visit_from, c.app.visit_to, c.app.id
    )
    return "reject:duplicate_application" if dup is not None else "pass:ok"


def _capacity(c: Check) -> str:
    """Each ring's daily capacity per pass type; an inner-ring pass counts in every
    outer ring it implies."""
    column = "daily_capacity_vehicle" if c.app.kind == ApplicationKind.vehicle else "daily_capacity_visitor"
    zones = c.session.scalars(select(Zone).where(Zone.event_id == c.event.id, Zone.ring <= c.app.ring))
    for zone in zones:
        cap = getattr(zone, column)
        if cap is None:
            continue
        rows = c.session.execute(
            select(Application.visit_from, Application.visit_to).where(
                Application.event_id == c.event.id,
                Application.kind == c.app.kind,
                Application.ring >= zone.ring,
                Application.status.in_((ApplicationStatus.approved, ApplicationStatus.manual_review)),
                Application.visit_from <= c.app.visit_to,
                Application.visit_to >= c.app.visit_from,
                Application.id != c.app.id,
            )
        ).all()
        per_day: Counter[date] = Counter()
        for start, end in rows:
            day = max(start, c.app.visit_from)
            while day <= min(end, c.app.visit_to):
                per_day[day] += 1
                day += timedelta(days=1)
        days = (c.app.visit_to - c.app.visit_from).days + 1
        visit = (c.app.visit_from + timedelta(days=i) for i in range(days))
        if any(per_day[d] >= cap for d in visit):  # a capacity of 0 admits no one
            return "reject:capacity_full"
    return "pass:ok"


def _watchlist(c: Check) -> str:
    c.watch_hits = lists.screen_application(c.session, c.app, now=c.now)
    outcomes = {o for _e, o in c.watch_hits}
    for outcome, code in (
        ("reject", "watch_exact_reject"),
        ("alert", "watch_exact_alert"),
        ("review", "watch_partial"),
    ):
        if outcome in outcomes:
            return f"{outcome}:{code}"
    return "pass:ok"


RULES: list[tuple[str, Callable[[Check], str]]] = [
    ("identity", _identity),
    ("plate", _plate),
    ("dates", _dates),
    ("duplicate", _duplicate),
    ("capacity", _capacity),
    ("watchlist", _watchlist),
]


def run(session: Session, event: Event, app: Application, *, now: datetime) -> ApplicationStatus:
    """Evaluate every rule in order, store each result, raise alerts; return the outcome.

    Side effects: RuleResult rows (replacing earlier ones of this application), alerts
    for watch-list hits (unless suppressed by the trust list).
    """
    c = Check(session, event, app, now, policy(event))
    for old in list(app.rule_results):
        session.delete(old)
    session.flush()
    verdicts = [(name, *fn(c).split(":")) for name, fn in RULES]
    trust = lists.find_trust(session, event.id, app.subject_index, app.ring, now=now)
    needs_trust = any(o in ("review", "alert") for _n, o, _r in verdicts)
    if trust is not None and needs_trust:
        verdicts.append(
            (
                "trust",
                "pass",
                "trusted_suppressed" if any(o == "alert" for _n, o, _r in verdicts) else "trusted",
            )
        )
    else:
        verdicts.append(("trust", "skip", "trusted" if trust else "not_trusted"))
    for seq, (name, outcome, code) in enumerate(verdicts, 1):
        message = RULE_REASONS[code].format_map(c.policy)  # the rule's name is stored beside it
        session.add(
            RuleResult(
                application_id=app.id, seq=seq, rule=name, outcome=outcome, reason_code=code, message=message
            )
        )
    outcomes = {o for _n, o, _r in verdicts}
    lists.alert_application_hits(session, app, c.watch_hits, trust, now=now)
    session.flush()
    session.expire(app, ["rule_results"])
    if "reject" in outcomes:
        return ApplicationStatus.rejected
    if "review" in outcomes and trust is None:
        return ApplicationStatus.manual_review
    return ApplicationStatus.approved


def citizen_message(app: Application) -> str:
    """The outcome as the applicant may see it: the reason of a rule about their own
    input or the event (dates, capacity…) when one refused, else a generic outcome. The
    watch and trust lists' results, and an officer's note, are never shown."""
    if app.status == ApplicationStatus.rejected:
        for r in app.rule_results:
            if r.outcome == "reject" and r.rule in CITIZEN_VISIBLE_RULES:
                return r.message
    return CITIZEN_OUTCOMES[app.status.value]
