"""Builders for quiz tests: a small bank, workers in an org tree, actors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from core.auth import Actor, load_actor
from models.identity import OrgLevel
from models.quiz import QuestionKind
from services.quiz.bank import TRUE_FALSE_OPTIONS, Draft, store
from tests.helpers import make_org, make_person

TOPICS = [
    "政治引领",
    "信息采集",
    "矛盾纠纷化解",
    "服务群众",
    "安全隐患排查",
    "应急处置",
    "疫情防控",
    "法律法规",
]
# Tuesday 2026-03-03 10:00 Asia/Shanghai
NOW = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)


def single(stem: str, topic: str, answer: str = "B", difficulty: int = 3) -> Draft:
    return Draft(
        kind=QuestionKind.single,
        stem=stem,
        options=[{"key": k, "text": f"{stem}-选项{k}"} for k in "ABCD"],
        answer=answer,
        explanation=f"{stem}的解析",
        topics=[topic],
        difficulty=difficulty,
    )


def make_bank(session: Session, per_topic: int = 3) -> list[int]:
    ids = []
    for t in TOPICS:
        for n in range(per_topic):
            q = store(session, single(f"{t}题{n}", t, "ABCD"[n % 4]), None, NOW)
            assert q is not None
            ids.append(q.id)
    tf = Draft(
        QuestionKind.true_false,
        "判断题示例",
        list(TRUE_FALSE_OPTIONS),
        "A",
        explanation="对",
        topics=["法律法规"],
    )
    multi = Draft(
        QuestionKind.multiple,
        "多选题示例",
        [{"key": k, "text": f"项{k}"} for k in "ABCD"],
        "AC",
        explanation="AC 正确",
        topics=["服务群众"],
    )
    scen = Draft(
        QuestionKind.scenario,
        "情景：楼道堆放杂物",
        parts=[
            {
                "stem": "先做什么",
                "options": [{"key": "A", "text": "劝导"}, {"key": "B", "text": "不管"}],
                "answer": "A",
                "multiple": False,
            },
            {
                "stem": "哪些是隐患",
                "options": [{"key": k, "text": f"隐患{k}"} for k in "ABC"],
                "answer": "AB",
                "multiple": True,
            },
        ],
        explanation="堆物占用消防通道",
        topics=["安全隐患排查"],
    )
    for d in (tf, multi, scen):
        q = store(session, d, None, NOW)
        assert q is not None
        ids.append(q.id)
    return ids


def org_tree(session: Session) -> dict[str, Any]:
    district = make_org(session, "测试区", OrgLevel.district)
    street = make_org(session, "测试街道", OrgLevel.street, district)
    community = make_org(session, "测试社区", OrgLevel.community, street)
    grid = make_org(session, "测试网格", OrgLevel.grid, community)
    other = make_org(session, "外区", OrgLevel.district)
    other_grid = make_org(
        session, "外区网格", OrgLevel.grid, make_org(session, "外社区", OrgLevel.community, other)
    )
    return {
        "district": district,
        "street": street,
        "community": community,
        "grid": grid,
        "other": other,
        "other_grid": other_grid,
    }


def worker(session: Session, org, name: str = "网格员") -> Actor:
    p = make_person(session, "grid_worker", org=org, name=name)
    return load_actor(session, p.id)


def trainer(session: Session, org, name: str = "培训员") -> Actor:
    p = make_person(session, "trainer", org=org, name=name)
    return load_actor(session, p.id)
