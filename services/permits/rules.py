"""Per-category rules, risk thresholds and rating weights as versioned configuration.

Sources: State Council 《易制毒化学品管理条例》 (2005, rev. 2018) arts. 15-21 (purchase),
arts. 20-27 (transport), art. 32 (sales reporting); the Quzhou practice described in
design/permits.md. Values marked ``confirmed=False`` are not confirmed from the official
text and are configuration, not law: change them here with a new ``VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERSION = "2026-11-28"
SOURCE = "《易制毒化学品管理条例》(国务院令第445号, 2018修订); design/permits.md table"


@dataclass(frozen=True)
class PurposeRule:
    form: str  # "permit" | "filing"
    decided_by: str  # "regulator" | "instant"
    validity_days: int | None  # None: the trip window
    single_use: bool = False
    review_days: int | None = None
    confirmed: bool = True
    note: str = ""


CATEGORY_RULES: dict[str, dict[int, PurposeRule]] = {
    "purchase": {
        1: PurposeRule(
            "permit",
            "regulator",
            90,
            review_days=10,
            confirmed=False,
            note="审批时限10日（条例第十五条）；有效期90日为配置值，未经原文确认",
        ),
        2: PurposeRule("filing", "instant", 90, confirmed=False, note="购买前备案；有效期为配置值"),
        3: PurposeRule("filing", "instant", 90, confirmed=False, note="同第二类；有效期为配置值"),
    },
    "transport": {
        1: PurposeRule("permit", "regulator", None, single_use=True, note="一次有效，公安审批"),
        2: PurposeRule("permit", "instant", 90, note="3个月有效（连续6个月无违规可为12个月）"),
        3: PurposeRule("filing", "instant", None, note="备案证明当日出具，有效至运输期满"),
    },
}

#: Transport permit validity after six clean months (category 2), days.
CLEAN_RECORD_VALIDITY_DAYS = 365
CLEAN_RECORD_MONTHS = 6

#: Sales report deadline per category, days (条例第三十二条 / design table).
SALES_REPORT_DAYS = {1: 5, 2: 30, 3: 30}

#: Credential expiry reminders, days before ``valid_until`` (design/jobs.md).
REMINDER_DAYS = (30, 7, 1)

ISSUING_AUTHORITY = "桐乡市公安局（易制毒化学品管理）"

#: Risk thresholds; each signal stores the values it was judged against.
RISK: dict[str, dict[str, Any]] = {
    "mass_balance": {"tolerance_pct": 2.0, "severity": "yellow", "reevaluate_hours": 24},
    "waybill_mismatch": {
        "tolerance_pct": 1.0,
        "grace_hours": 12,
        "severity": "yellow",
        "reevaluate_hours": 1,
    },
    "consumption_anomaly": {
        "window_days": 7,
        "baseline_days": 90,
        "factor": 3.0,
        "severity": "yellow",
        "reevaluate_hours": 24,
    },
    "production_surge": {
        "window_days": 7,
        "baseline_days": 90,
        "factor": 3.0,
        "severity": "yellow",
        "reevaluate_hours": 24,
    },
    "fatigue_driving": {
        "day_max_minutes": 240,
        "night_max_minutes": 120,
        "min_rest_minutes": 20,
        "night_start_hour": 22,
        "night_end_hour": 6,
        "severity": "yellow",
        "reevaluate_hours": 24,
        "source": "《道路交通安全法实施条例》第六十二条；JT/T 617 夜间驾驶规定",
    },
    "credential_lapse": {"severity": "red", "inspection_overdue_severity": "yellow", "reevaluate_hours": 24},
    "cumulative_purchase": {
        "baseline_months": 3,
        "factor": 2.0,
        "severity": "yellow",
        "reevaluate_hours": 24,
    },
}

#: Which department a warning of each risk type goes to.
DEPARTMENT_BY_RISK = {
    "mass_balance": "police",
    "waybill_mismatch": "police",
    "consumption_anomaly": "police",
    "production_surge": "emergency",
    "fatigue_driving": "transport",
    "credential_lapse": "transport",
    "cumulative_purchase": "police",
}

WARNING_SLA_DAYS = 7
ESCALATION_STEP_DAYS = 2

#: Star rating: published indicator weights (sum 100) and the score needed per star.
RATING_VERSION = "2026Q4"
RATING_WEIGHTS = {
    "filing_timeliness": 20,
    "ledger_completeness": 20,
    "mass_balance_accuracy": 20,
    "credential_currency": 15,
    "warnings": 15,
    "training": 10,
}
STAR_THRESHOLDS = ((90, 5), (80, 4), (70, 3), (60, 2), (0, 1))
#: Supervision intensity follows the stars (on-site inspections per year); policy value.
INSPECTIONS_PER_YEAR = {5: 1, 4: 2, 3: 4, 2: 6, 1: 12}


def purpose_rule(purpose: str, category: int) -> PurposeRule:
    return CATEGORY_RULES[purpose][category]


def describe() -> dict[str, Any]:
    """The configuration as published data (API and docs)."""
    return {
        "version": VERSION,
        "source": SOURCE,
        "categories": {
            purpose: {str(c): rule.__dict__ for c, rule in by_cat.items()}
            for purpose, by_cat in CATEGORY_RULES.items()
        },
        "sales_report_days": SALES_REPORT_DAYS,
        "risk": RISK,
        "rating_weights": RATING_WEIGHTS,
        "star_thresholds": [list(t) for t in STAR_THRESHOLDS],
        "inspections_per_year": INSPECTIONS_PER_YEAR,
    }
