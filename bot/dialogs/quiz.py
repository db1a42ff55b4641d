"""Grid-worker dialogs: 每日一练 one question at a time (再来一组 for another set once the
day's is done), 积分, 排行 (services.quiz)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import select

from bot.engine import Reply, Turn
from bot.router import command, flow
from core.errors import Conflict, ValidationFailed

LEARNERS = ("grid_worker", "trainer")
TOP_N = 5  # names shown per board in chat
ANSWER_HINT = "请回复选项字母，如 A；多选题回复 AB；情景题各小题用“/”分开，如 A/BC。发送“取消”退出练习。"
MORE_HINT = "想继续练习，请发送“再来一组”。"


def _question_text(view: dict[str, Any], total: int) -> str:
    q = view["question"]
    lines = [f"第 {view['position']}/{total} 题（{q.get('kind_label', '')}）", q["stem"]]
    if q.get("parts"):
        for i, part in enumerate(q["parts"], 1):
            lines.append(f"（{i}）{part['stem']}" + ("（多选）" if part.get("multiple") else ""))
            lines.extend(f"  {o['key']}. {o['text']}" for o in part["options"])
    else:
        lines.extend(f"{o['key']}. {o['text']}" for o in q.get("options", []))
    lines.append("请回复选项字母作答。")
    return "\n".join(lines)


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).upper()
    return re.sub(r"[,，、.。\s]+", "", re.sub(r"\s*[/|;；]\s*", "/", text.strip()))


def _valid(choice: str, view: dict[str, Any]) -> bool:
    q = view["question"]
    parts = q.get("parts") or [{"options": q.get("options", [])}]
    answers = choice.split("/")
    if len(answers) != len(parts):
        return False
    for ans, part in zip(answers, parts, strict=True):
        keys = {o["key"] for o in part["options"]}
        if not ans or any(ch not in keys for ch in ans):
            return False
    return True


@command("每日一练", summary="今日练习，逐题作答", roles=LEARNERS, menu_key="QUIZ_DAILY", aliases=("练习",))
def daily(turn: Turn, _args: str) -> Reply:
    from services.quiz import practice

    nxt = practice.next_question(turn.session, turn.actor(), now=turn.now)
    total = _total(nxt)
    if total == 0:
        return Reply(text="题库暂时没有可练习的题目，请稍后再试。")
    if nxt["item"] is None:
        return Reply(text="今天的练习已经完成啦！\n" + _summary(turn) + "\n" + MORE_HINT)
    turn.start_flow("daily", current=nxt["item"]["item_id"], total=total)
    intro = f"今日练习共 {total} 题。{ANSWER_HINT}\n\n"
    return Reply(text=intro + _question_text(nxt["item"], total))


@command("再来一组", summary="今日练习完成后再练一组", roles=LEARNERS, aliases=("再来一轮",))
def another_set(turn: Turn, _args: str) -> Reply:
    from services.quiz import practice

    added = practice.more(turn.session, turn.actor(), now=turn.now)  # Conflict: finish today's first
    nxt = practice.next_question(turn.session, turn.actor(), now=turn.now)
    if nxt["item"] is None:
        return Reply(text="题库中暂时没有今天还没练过的题目了，明天再来吧。")
    total = _total(nxt)
    turn.start_flow("daily", current=nxt["item"]["item_id"], total=total)
    intro = f"再来一组，共 {len(added['items'])} 题（答对仍计入每日积分上限）。{ANSWER_HINT}\n\n"
    return Reply(text=intro + _question_text(nxt["item"], total))


def _total(nxt: dict[str, Any]) -> int:
    return int(str(nxt["progress"]).partition("/")[2] or 0)


@flow("daily")
def daily_answer(turn: Turn, text: str) -> Reply:
    from services.quiz import practice

    actor = turn.actor()
    nxt = practice.next_question(turn.session, actor, now=turn.now)
    current, total = nxt["item"], _total(nxt)
    if current is None:
        turn.end_flow()
        return Reply(text="今天的练习已经完成啦！\n" + _summary(turn) + "\n" + MORE_HINT)
    if current["item_id"] != turn.slots.get("current"):  # answered meanwhile in the form
        turn.slots["current"] = current["item_id"]
        return Reply(text="上一题已在小程序中作答。\n\n" + _question_text(current, total))
    choice = _normalize(text)
    if not _valid(choice, current):
        return Reply(text=f"没能识别您的答案。{ANSWER_HINT}\n\n" + _question_text(current, total))
    try:
        result = practice.answer(turn.session, actor, current["item_id"], choice, now=turn.now)
        feedback = _feedback(result)
    except ValidationFailed as exc:
        return Reply(text=f"{exc.message}。{ANSWER_HINT}")
    except Conflict as exc:  # answered elsewhere or retired meanwhile: move on
        feedback = exc.message
    return _next(turn, feedback)


def _next(turn: Turn, feedback: str) -> Reply:
    from services.quiz import practice

    nxt = practice.next_question(turn.session, turn.actor(), now=turn.now)
    if nxt["item"] is None:
        turn.end_flow()
        return Reply(text=f"{feedback}\n\n今日练习完成！\n{_summary(turn)}\n{MORE_HINT}")
    turn.slots["current"] = nxt["item"]["item_id"]
    return Reply(text=f"{feedback}\n\n{_question_text(nxt['item'], _total(nxt))}")


def _feedback(result: dict[str, Any]) -> str:
    r = result["result"]
    lines = ["✔ 回答正确！" if r["correct"] else f"✘ 回答错误。正确答案：{r['correct_answer']}"]
    if r.get("explanation"):
        lines.append(f"解析：{r['explanation']}")
    if r.get("points_awarded"):
        lines.append(f"积分 +{r['points_awarded']}")
    if r.get("points_note"):  # a cap reached: why this answer earned less (or nothing)
        lines.append(r["points_note"])
    return "\n".join(lines)


def _summary(turn: Turn) -> str:
    from services.quiz import points, practice

    items = practice.start_daily(turn.session, turn.actor(), now=turn.now)["items"]
    results = [i.get("result") or {} for i in items]
    right = sum(1 for r in results if r.get("correct"))
    earned = sum(int(r.get("points_awarded") or 0) for r in results)
    pid = turn.actor().person_id
    caps = "；".join(c["text"] for c in points.caps_today(turn.session, pid, turn.now))
    total = points.balance_sql(turn.session, pid)
    return f"答对 {right}/{len(items)} 题，获得 {earned} 积分。\n{caps}\n累计积分：{total}"


def _units(turn: Turn) -> list[tuple[str, Any]]:
    """(label, org unit) for the worker's community and street."""
    from models.identity import OrgLevel, OrgUnit

    actor = turn.actor()
    if actor.org_unit_id is None:
        return []
    unit = turn.session.get(OrgUnit, actor.org_unit_id)
    ids = [int(p) for p in (unit.path if unit else "").split("/") if p]
    rows = turn.session.scalars(select(OrgUnit).where(OrgUnit.id.in_(ids))).all()
    wanted = {OrgLevel.community: "社区", OrgLevel.street: "街道"}
    return [(wanted[u.level], u) for u in sorted(rows, key=lambda u: -len(u.path)) if u.level in wanted]


@command("积分", summary="今日积分、累计积分、等级和排名", roles=LEARNERS, menu_key="QUIZ_POINTS")
def my_points(turn: Turn, _args: str) -> Reply:
    from services.quiz import levels, points

    actor = turn.actor()
    lines = ["我的积分"]
    lines.extend(f"· {c['text']}" for c in points.caps_today(turn.session, actor.person_id, turn.now))
    lines.append(f"累计积分：{points.balance_sql(turn.session, actor.person_id)}")
    lines.append(f"等级：{'★' * levels.current_level(turn.session, actor.person_id)}")
    for label, unit in _units(turn)[:1]:
        s = points.standing(turn.session, actor.person_id, unit.id)
        lines.append(f"{label}排名（{unit.name}）：第 {s['rank']}/{s['of']} 名")
    return Reply(text="\n".join(lines))


@command(
    "排行",
    summary="本社区和街道的积分排行",
    roles=LEARNERS,
    menu_key="QUIZ_RANK",
    aliases=("排行榜",),
    slow=True,  # sums the ledger of a whole street
)
def ranking(turn: Turn, _args: str) -> Reply:
    from services.quiz import points

    actor = turn.actor()
    units = _units(turn)
    if not units:
        return Reply(text="您的账号还没有所属网格，暂无排行。")
    lines = ["积分排行"]
    for label, unit in units:
        s = points.standing(turn.session, actor.person_id, unit.id)
        lines.append(f"{label}（{unit.name}）：您第 {s['rank']}/{s['of']} 名，{s['balance']} 分")
        for n, (name, total) in enumerate(_top(turn, unit.path), 1):
            lines.append(f"  {n}. {name} {total} 分")
    return Reply(text="\n".join(lines))


def _top(turn: Turn, path: str, limit: int = TOP_N) -> list[tuple[str, int]]:
    """The first ``limit`` workers of the subtree ``path`` by ledger total (ties: lower id)."""
    from sqlalchemy import func

    from models import quiz as quiz_models
    from models.identity import OrgUnit, Person

    PointEntry = quiz_models.PointEntry
    total = func.sum(PointEntry.delta).label("total")
    rows = turn.session.execute(
        select(Person.name, total)
        .join(PointEntry, PointEntry.person_id == Person.id)
        .join(OrgUnit, OrgUnit.id == Person.org_unit_id)
        .where(OrgUnit.path.startswith(path))
        .group_by(Person.id, Person.name)
        .order_by(total.desc(), Person.id)
        .limit(limit)
    )
    return [(name, int(t or 0)) for name, t in rows]
