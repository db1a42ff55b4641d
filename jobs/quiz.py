"""Quiz jobs: portrait pictures (radar per worker, heatmap per org unit), the sweeps
that close overdue attempts and finalise ended competitions, and the batches of the
periodic reminders and quarterly levels (services.quiz.notices / levels) with the
notification kinds they send.

Pictures are rendered with matplotlib (Agg) to the file store; the CJK face comes from
jobs.render.fonts when available, else labels fall back to topic numbers (T1..T8) with
the legend written as numbers only, so a missing font never fails the job.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from jobs.push.kinds import PushKind, register_kind
from jobs.queues import CERTIFICATES, DEFAULT, MAINTENANCE
from jobs.registry import PermanentError, job

PRACTICE_REMINDER = register_kind(
    PushKind(
        kind="quiz.practice_reminder",
        title="每日一练提醒",
        text=(
            "您{day}的每日一练还有 {remaining} 道题未完成，"
            "答对每题得 {per_correct} 分（每日上限 {cap} 分），快来练一练吧。"
        ),
        page="pages/quiz/practice",
    )
)
COMPETITION_NOTICE = register_kind(
    PushKind(
        kind="quiz.competition_notice",
        title="比武开赛提醒",
        text="【月度比武】《{title}》{starts}，{ends}截止，每人限参加一次，请提前安排好时间。",
        page="pages/quiz/competitions",
    )
)
LEVEL_CHANGED = register_kind(
    PushKind(
        kind="quiz.level_changed",
        title="星级评定结果",
        text="{quarter}星级评定：您的星级由 {old} 星{change} {new} 星。{hint}",
        page="pages/quiz/level",
    )
)


def _cjk_path() -> str | None:
    try:
        from jobs.render.fonts import cjk_font_path  # type: ignore[import-not-found]

        return str(cjk_font_path())
    except (ImportError, RuntimeError, OSError):
        pass
    try:  # the same Noto Sans SC package the render module uses
        import pylopdf_fonts_zh_cn as noto  # type: ignore[import-not-found]

        return str(noto.sans_path())
    except (ImportError, OSError):
        return None


def _font() -> Any:
    from matplotlib import font_manager

    path = _cjk_path()
    if path is None:
        return None
    return font_manager.FontProperties(fname=path)


def _labels(names: list[str], font: Any) -> list[str]:
    return names if font is not None else [f"T{i + 1}" for i in range(len(names))]


def _store(rel: str, data: bytes) -> str:
    """Write under the file store at a stable name (the chat side looks it up by name)."""
    from flask import current_app, has_app_context

    from jobs.context import get_app

    app = current_app if has_app_context() else get_app()
    root: Path = app.extensions["zhizhi"].settings.file_store_dir
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return str(path)


def radar_png(title: str, topics: list[str], values: list[float | None], level: int) -> bytes:
    """A radar chart of topic mastery (0..100) with the star level in the title."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    font = _font()
    n = len(topics)
    angles = [2 * math.pi * i / n for i in range(n)] + [0.0]
    vals = [v or 0.0 for v in values] + [values[0] or 0.0] if values else [0.0]
    fig = Figure(figsize=(5, 5), dpi=110)
    ax = fig.add_subplot(111, polar=True)
    ax.plot(angles, vals, color="#c0392b", linewidth=2)
    ax.fill(angles, vals, color="#e74c3c", alpha=0.25)
    ax.set_xticks(angles[:-1])
    ax.set_xticklabels(_labels(topics, font), fontproperties=font, fontsize=9)
    ax.set_ylim(0, 100)
    heading = f"{title}  {'★' * level}" if font is not None else f"Level {level}"
    ax.set_title(heading, fontproperties=font, pad=18)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def heatmap_png(title: str, topics: list[str], units: list[str], matrix: list[list[float | None]]) -> bytes:
    """Topic × unit mastery heatmap; empty cells (no answers) are grey."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    font = _font()
    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig = Figure(figsize=(1.2 + 0.9 * len(topics), 1.2 + 0.5 * max(len(units), 1)), dpi=110)
    ax = fig.add_subplot(111)
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(topics)))
    ax.set_xticklabels(_labels(topics, font), fontproperties=font, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(units)))
    ax.set_yticklabels(
        units if font is not None else [f"U{i + 1}" for i in range(len(units))],
        fontproperties=font,
        fontsize=8,
    )
    for (i, j), v in np.ndenumerate(data):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax)
    ax.set_title(title if font is not None else "mastery", fontproperties=font)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _system_actor() -> Any:
    from core.auth import Actor, Grant

    return Actor(person_id=0, name="system", grants=(Grant(role="admin"),))


@job("quiz.worker_radar", queue=CERTIFICATES)
def worker_radar(session: Session, item: Any) -> dict:
    """Render a worker's radar PNG. Idempotent: re-rendering overwrites the same file."""
    from services.quiz import portraits

    pid, day = item.payload["id"], item.payload["day"]
    try:
        p = portraits.worker(session, _system_actor(), pid)
    except Exception as exc:
        raise PermanentError(f"portrait unavailable: {type(exc).__name__}") from exc
    png = radar_png(
        p["name"], [t["topic"] for t in p["topics"]], [t["mastery"] for t in p["topics"]], p["level"]["level"]
    )
    return {"path": _store(portraits.picture_name("worker", pid, item.payload.get("tag", day)), png)}


@job("quiz.unit_heatmap", queue=CERTIFICATES)
def unit_heatmap(session: Session, item: Any) -> dict:
    """Render an org unit's topic × unit heatmap PNG. Idempotent."""
    from services.quiz import portraits

    uid, day = item.payload["id"], item.payload["day"]
    u = portraits.unit(session, _system_actor(), uid)
    png = heatmap_png(
        f"{u['unit']} 掌握度",
        u["topics"],
        [r["unit"] for r in u["matrix"]],
        [r["mastery"] for r in u["matrix"]],
    )
    return {"path": _store(portraits.picture_name("unit", uid, item.payload.get("tag", day)), png)}


@job("quiz.sweep", queue=MAINTENANCE)
def sweep(session: Session, item: Any) -> dict:
    """Close overdue attempts and finalise ended competitions. Idempotent."""
    from services.quiz import attempts, competitions

    return {"closed": attempts.close_overdue(session), "finalized": competitions.finalize_due(session)}


@job("quiz.practice_reminders", queue=MAINTENANCE, timeout=600)
def practice_reminders(session: Session, item: Any) -> dict:
    """One batch of the 08:30 daily-practice reminder (see services.quiz.notices)."""
    from datetime import date

    from core.db import utcnow
    from services.quiz import notices

    p = item.payload
    return notices.remind_practice(session, p["ids"], date.fromisoformat(p["day"]), utcnow())


@job("quiz.competition_notices", queue=MAINTENANCE, timeout=600)
def competition_notices(session: Session, item: Any) -> dict:
    """One batch of a competition notice stage (1 day / 30 minutes before the window)."""
    from core.db import utcnow
    from services.quiz import notices

    p = item.payload
    return notices.notify_competition(session, p["competition_id"], p["minutes"], p["ids"], utcnow())


@job("quiz.level_snapshots", queue=DEFAULT, timeout=600)
def level_snapshots(session: Session, item: Any) -> dict:
    """One batch of the quarterly level assessment (see services.quiz.levels)."""
    from datetime import datetime

    from services.quiz import levels

    p = item.payload
    return levels.snapshot_workers(session, p["quarter"], datetime.fromisoformat(p["at"]), p["ids"])
