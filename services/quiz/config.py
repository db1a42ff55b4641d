"""Versioned rules of the quiz domain: point sources and caps, star-level thresholds,
practice and competition parameters. Each version notes its source; the one in force at
``now`` is the latest whose ``effective_from`` has passed. Ledger rows and levels record
the version they were computed under, so a rule change never rewrites history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class SourceRule:
    label: str  # shown to workers: "每日一练"
    period: str | None  # "day" | "week" | None (uncapped)
    cap: int | None


@dataclass(frozen=True)
class LevelRule:
    level: int
    points_90d: int  # engagement floor
    ability: float  # competence floor: overall mastery 0..100 ...
    percentile: float | None  # ... or a competition finish within the top fraction


@dataclass(frozen=True)
class Rules:
    version: str
    effective_from: datetime
    source_note: str
    sources: dict[str, SourceRule]
    practice_per_correct: int = 1
    test_points_max: int = 5
    competition_tiers: tuple[tuple[float, int], ...] = ((0.10, 10), (0.30, 6))
    competition_finish_points: int = 3
    levels: tuple[LevelRule, ...] = field(default_factory=tuple)
    daily_size: int = 5
    no_repeat_days: int = 7
    default_grace_seconds: int = 5
    answers_per_minute: int = 60  # per worker, answer/save endpoints


RULES: tuple[Rules, ...] = (
    Rules(
        version="2026-01",
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        source_note="网格员学练评管积分细则（试行）2026 版，区培训中心发布；参照学习强国每日任务上限",
        sources={
            "practice": SourceRule("每日一练", "day", 5),
            "test": SourceRule("测试", "week", 5),
            "competition": SourceRule("月度比武", None, None),
            "award": SourceRule("培训员奖励", None, None),
            "correction": SourceRule("更正", None, None),
        },
        levels=(
            LevelRule(2, 20, 50.0, 0.80),
            LevelRule(3, 60, 60.0, 0.50),
            LevelRule(4, 120, 70.0, 0.30),
            LevelRule(5, 200, 80.0, 0.10),
        ),
    ),
)


def rules_at(now: datetime) -> Rules:
    live = [r for r in RULES if r.effective_from <= now]
    return max(live, key=lambda r: r.effective_from) if live else RULES[0]


def local_day(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def period_bounds(now: datetime, period: str) -> tuple[datetime, datetime]:
    """UTC [start, end) of the Asia/Shanghai day or ISO week (Mon..Sun) containing ``now``."""
    day = local_day(now)
    if period == "week":
        day = day - timedelta(days=day.weekday())
    start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    end = start + (timedelta(days=7) if period == "week" else timedelta(days=1))
    return start.astimezone(UTC), end.astimezone(UTC)
