"""Question bank: create, edit (new version), retire, list; content hashing; the views
of a question with and without its answer."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor, require_role
from core.db import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from core.pagination import cursor_id, encode_cursor
from models.quiz import Question, QuestionKind, QuestionStatus, QuestionTopic, QuestionVersion, Topic
from services.quiz import audit

TRAINER_ROLES = ("trainer",)
KIND_LABELS = {
    QuestionKind.single: "单选题",
    QuestionKind.multiple: "多选题",
    QuestionKind.true_false: "判断题",
    QuestionKind.scenario: "情景题",
}
TRUE_FALSE_OPTIONS = [{"key": "A", "text": "正确"}, {"key": "B", "text": "错误"}]


@dataclass
class Draft:
    """A question as parsed from a form or an import row, before it is stored."""

    kind: QuestionKind
    stem: str
    options: list[dict[str, str]] = field(default_factory=list)
    answer: str = ""
    parts: list[dict[str, Any]] = field(default_factory=list)
    explanation: str = ""
    topics: list[str] = field(default_factory=list)
    difficulty: int = 3
    source: str | None = None
    line: int = 0

    def content_hash(self) -> str:
        """Identity of the content (not of topic tags or explanation wording)."""
        norm = {
            "kind": str(self.kind),
            "stem": " ".join(self.stem.split()),
            "options": [[o["key"], " ".join(o["text"].split())] for o in self.options],
            "answer": self.answer,
            "parts": [
                [" ".join(p["stem"].split()), [[o["key"], o["text"]] for o in p["options"]], p["answer"]]
                for p in self.parts
            ],
        }
        raw = json.dumps(norm, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()


# Limits shared by the form (miniapp_api/quiz/schemas.py) and imports; the columns
# behind them: Topic.name 50, Question.source 200, QuestionVersion.answer 16.
MAX_STEM, MAX_PART_STEM, MAX_OPTION, MAX_EXPLANATION = 5000, 2000, 500, 5000
MAX_TOPIC, MAX_TOPICS, MAX_SOURCE, MAX_OPTIONS, MAX_PARTS = 50, 5, 200, 6, 10


def check_draft(d: Draft) -> str | None:
    """The Chinese reason a draft is invalid, or None."""
    if not d.stem.strip():
        return "题干为空"
    if not d.topics:
        return "缺少知识点"
    if not 1 <= d.difficulty <= 5:
        return "难度应为 1～5"
    why = _check_lengths(d)
    if why:
        return why
    if d.kind == QuestionKind.scenario:
        if not d.parts:
            return "情景题至少需要一道小题"
        for i, part in enumerate(d.parts, 1):
            if len(part["stem"]) > MAX_PART_STEM:
                return f"第 {i} 小题：题干超过 {MAX_PART_STEM} 字"
            why = _check_choice(part["options"], part["answer"], bool(part.get("multiple")))
            if why:
                return f"第 {i} 小题：{why}"
        return None
    return _check_choice(d.options, d.answer, d.kind == QuestionKind.multiple)


def _check_lengths(d: Draft) -> str | None:
    if len(d.stem) > MAX_STEM:
        return f"题干超过 {MAX_STEM} 字"
    if len(d.explanation) > MAX_EXPLANATION:
        return f"解析超过 {MAX_EXPLANATION} 字"
    if len(d.topics) > MAX_TOPICS:
        return f"知识点最多 {MAX_TOPICS} 个"
    for t in d.topics:
        if len(t) > MAX_TOPIC:
            return f"知识点“{t[:10]}…”超过 {MAX_TOPIC} 字"
    if d.source and len(d.source) > MAX_SOURCE:
        return f"来源超过 {MAX_SOURCE} 字"
    if len(d.parts) > MAX_PARTS:
        return f"情景题最多 {MAX_PARTS} 道小题"
    return None


def _check_choice(options: list[dict[str, str]], answer: str, multiple: bool) -> str | None:
    keys = [o["key"] for o in options]
    if len(options) < 2:
        return "至少需要两个选项"
    if len(options) > MAX_OPTIONS:
        return f"选项最多 {MAX_OPTIONS} 个"
    if any(not o["text"].strip() for o in options):
        return "选项内容为空"
    if any(len(o["text"]) > MAX_OPTION for o in options):
        return f"选项内容超过 {MAX_OPTION} 字"
    if not answer:
        return "缺少答案"
    if any(ch not in keys for ch in answer):
        return f"答案 {answer} 不在选项 {''.join(keys)} 中"
    if not multiple and len(answer) != 1:
        return "单选/判断题只能有一个答案"
    if multiple and len(answer) < 2:
        return "多选题至少两个正确答案"
    return None


def topic_ids(session: Session, names: list[str]) -> list[int]:
    """Ids of the named topics, creating missing ones (flushes)."""
    ids = []
    for name in names:
        topic = session.scalar(select(Topic).where(Topic.name == name))
        if topic is None:
            topic = Topic(name=name)
            session.add(topic)
            session.flush()
        ids.append(topic.id)
    return ids


def store(session: Session, d: Draft, actor_id: int | None, now: datetime) -> Question | None:
    """Insert a valid draft as a new question with version 1; None if its content exists."""
    digest = d.content_hash()
    known = session.scalar(select(QuestionVersion.id).where(QuestionVersion.content_hash == digest))
    if known is not None:
        return None
    q = Question(
        kind=d.kind,
        difficulty=d.difficulty,
        source=d.source,
        content_hash=digest,
        created_by_id=actor_id,
        created_at=now,
    )
    session.add(q)
    session.flush()
    for tid in dict.fromkeys(topic_ids(session, d.topics)):
        session.add(QuestionTopic(question_id=q.id, topic_id=tid))
    session.add(_version(q.id, 1, d, digest, actor_id, now))
    session.flush()
    session.expire(q, ["topics"])
    return q


def _version(qid: int, number: int, d: Draft, digest: str, actor_id: int | None, now: datetime):
    return QuestionVersion(
        question_id=qid,
        number=number,
        stem=d.stem.strip(),
        options=d.options,
        answer=d.answer,
        parts=d.parts,
        explanation=d.explanation.strip(),
        content_hash=digest,
        created_by_id=actor_id,
        created_at=now,
    )


def create(session: Session, actor: Actor, d: Draft, now: datetime | None = None) -> Question:
    """Trainer adds one question. Refuses invalid content and duplicates (409). Audited
    (``quiz.question.create``)."""
    require_role(actor, *TRAINER_ROLES)
    why = check_draft(d)
    if why:
        raise ValidationFailed(why, fields={"question": why})
    now = now or utcnow()
    q = store(session, d, actor.person_id, now)
    if q is None:
        raise Conflict("题库中已有相同内容的题目", code="duplicate_question")
    data = {"kind": str(q.kind), "version": 1, "status": str(q.status), "topics": list(d.topics)}
    audit.record(session, actor.person_id, "quiz.question.create", "quiz_question", q.id, data, now)
    return q


def edit(session: Session, actor: Actor, question_id: int, d: Draft, now: datetime | None = None) -> Question:
    """A new version of the question; earlier answers keep pointing at their version.
    Audited (``quiz.question.edit``: versions and each changed field before/after)."""
    require_role(actor, *TRAINER_ROLES)
    q = get(session, question_id)
    why = check_draft(d)
    if why:
        raise ValidationFailed(why, fields={"question": why})
    if d.kind != q.kind:
        raise ValidationFailed("不能修改题型", fields={"kind": "不能修改题型"})
    now = now or utcnow()
    before = audit.question_state(q, current(session, q), [t.name for t in q.topics])
    q.current_version += 1
    q.difficulty = d.difficulty
    if d.source is not None:  # omitted: kept; "" clears it
        q.source = d.source or None
    v = _version(q.id, q.current_version, d, d.content_hash(), actor.person_id, now)
    session.add(v)
    session.execute(QuestionTopic.__table__.delete().where(QuestionTopic.question_id == q.id))
    for tid in dict.fromkeys(topic_ids(session, d.topics)):
        session.add(QuestionTopic(question_id=q.id, topic_id=tid))
    after = audit.question_state(q, v, list(dict.fromkeys(d.topics)))
    data = {"version": {"before": q.current_version - 1, "after": q.current_version}}
    data["changes"] = audit.changes(before, after)
    audit.record(session, actor.person_id, "quiz.question.edit", "quiz_question", q.id, data, now)
    session.flush()
    session.expire(q, ["topics", "versions"])
    return q


def set_status(
    session: Session, actor: Actor, question_id: int, status: QuestionStatus, now: datetime | None = None
) -> Question:
    """Activate, retire or set a question back to draft; a change is audited
    (``quiz.question.status``), setting the status it already has writes nothing."""
    require_role(actor, *TRAINER_ROLES)
    q = get(session, question_id)
    if q.status != status:
        data = {"status": {"before": str(q.status), "after": str(status)}}
        q.status = status
        audit.record(
            session, actor.person_id, "quiz.question.status", "quiz_question", q.id, data, now or utcnow()
        )
    session.flush()
    return q


def get(session: Session, question_id: int) -> Question:
    q = session.get(Question, question_id)
    if q is None:
        raise NotFound("题目不存在", code="question_not_found")
    return q


def current(session: Session, q: Question) -> QuestionVersion:
    v = session.scalar(
        select(QuestionVersion).where(
            QuestionVersion.question_id == q.id, QuestionVersion.number == q.current_version
        )
    )
    assert v is not None
    return v


#: question and version content by version id (what views and sheets of an attempt need)
Content = dict[int, tuple[Question, QuestionVersion]]


def current_versions(
    session: Session, question_ids: list[int]
) -> dict[int, tuple[Question, QuestionVersion]]:
    """Every named question with its current version, by question id: one query (plus
    the topics' selectin load), however many questions."""
    if not question_ids:
        return {}
    rows = session.execute(
        select(Question, QuestionVersion)
        .join(
            QuestionVersion,
            (QuestionVersion.question_id == Question.id)
            & (QuestionVersion.number == Question.current_version),
        )
        .where(Question.id.in_(question_ids))
    ).all()
    return {q.id: (q, v) for q, v in rows}


def content_of(session: Session, version_ids: list[int]) -> Content:
    """Questions with the given versions (not necessarily current), by version id: one
    query plus the topics' selectin load."""
    if not version_ids:
        return {}
    rows = session.execute(
        select(Question, QuestionVersion)
        .join(QuestionVersion, QuestionVersion.question_id == Question.id)
        .where(QuestionVersion.id.in_(version_ids))
    ).all()
    return {v.id: (q, v) for q, v in rows}


def public_view(q: Question, v: QuestionVersion, order: list[list[str]] | None = None) -> dict[str, Any]:
    """What a worker sees before answering: no answer, no explanation.

    ``order`` (per part: original keys in display order) relabels shuffled options A, B, C...
    """

    def opts(options: list[dict[str, str]], idx: int) -> list[dict[str, str]]:
        if order is None:
            return [{"key": o["key"], "text": o["text"]} for o in options]
        by_key = {o["key"]: o["text"] for o in options}
        return [{"key": chr(65 + i), "text": by_key[k]} for i, k in enumerate(order[idx])]

    out: dict[str, Any] = {
        "question_id": q.id,
        "version": v.number,
        "kind": str(q.kind),
        "kind_label": KIND_LABELS[q.kind],
        "stem": v.stem,
        "topics": [t.name for t in q.topics],
        "difficulty": q.difficulty,
    }
    if q.kind == QuestionKind.scenario:
        out["parts"] = [
            {"stem": p["stem"], "multiple": bool(p.get("multiple")), "options": opts(p["options"], i)}
            for i, p in enumerate(v.parts)
        ]
    else:
        out["options"] = opts(v.options, 0)
    return out


def full_view(q: Question, v: QuestionVersion) -> dict[str, Any]:
    """Trainer view: content with answers and explanation."""
    out = public_view(q, v)
    out.update(status=str(q.status), source=q.source, explanation=v.explanation)
    if q.kind == QuestionKind.scenario:
        for part, src in zip(out["parts"], v.parts, strict=True):
            part["answer"] = src["answer"]
    else:
        out["answer"] = v.answer
    return out


def answer_keys(v: QuestionVersion) -> list[str]:
    """Correct original keys per part (choice kinds: one part)."""
    return [p["answer"] for p in v.parts] if v.parts else [v.answer]


def options_per_part(v: QuestionVersion) -> list[list[str]]:
    if v.parts:
        return [[o["key"] for o in p["options"]] for p in v.parts]
    return [[o["key"] for o in v.options]]


def normalize_choice(raw: str) -> str:
    """ "ab" / "A,B" / "b a" -> "AB" (sorted, unique)."""
    if len(raw) == 1 and "A" <= raw <= "Z":  # the common reply: one capital letter
        return raw
    return "".join(sorted({ch for ch in raw.upper() if "A" <= ch <= "Z"}))


def list_questions(
    session: Session, actor: Actor, cursor: str | None, limit: int, topic: str | None, status: str | None
) -> dict[str, Any]:
    """Trainer's bank listing (with answers), newest first, cursor-paginated."""

    require_role(actor, *TRAINER_ROLES)
    stmt = select(Question).order_by(Question.id.desc())
    if cursor:
        stmt = stmt.where(Question.id < cursor_id(cursor))
    if topic:
        stmt = (
            stmt.join(QuestionTopic, QuestionTopic.question_id == Question.id)
            .join(Topic, Topic.id == QuestionTopic.topic_id)
            .where(Topic.name == topic)
        )
    if status:
        stmt = stmt.where(Question.status == QuestionStatus(status))
    rows = list(session.scalars(stmt.limit(limit + 1)))
    nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    cur = current_versions(session, [q.id for q in rows[:limit]])
    return {"items": [full_view(*cur[q.id]) for q in rows[:limit]], "next_cursor": nxt}
