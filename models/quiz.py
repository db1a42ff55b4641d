"""Grid-worker learning: question bank, practice, papers/attempts, competitions, points."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow
from models.identity import str_enum


class QuestionKind(enum.StrEnum):
    single = "single"  # 单选题
    multiple = "multiple"  # 多选题
    true_false = "true_false"  # 判断题
    scenario = "scenario"  # 情景题 (case text + sub-questions)


class QuestionStatus(enum.StrEnum):
    draft = "draft"
    active = "active"
    retired = "retired"


class PaperMode(enum.StrEnum):
    fixed = "fixed"
    blueprint = "blueprint"


class Grading(enum.StrEnum):
    first = "first"
    highest = "highest"
    last = "last"


class AttemptStatus(enum.StrEnum):
    in_progress = "in_progress"
    submitted = "submitted"
    expired = "expired"  # graded at the deadline from saved answers


class CompetitionStatus(enum.StrEnum):
    scheduled = "scheduled"
    finalized = "finalized"


class Topic(Base):
    __tablename__ = "quiz_topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuestionTopic(Base):
    __tablename__ = "quiz_question_topics"

    question_id: Mapped[int] = mapped_column(ForeignKey("quiz_questions.id"), primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("quiz_topics.id"), primary_key=True, index=True)


class Question(Base):
    __tablename__ = "quiz_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[QuestionKind] = mapped_column(str_enum(QuestionKind, "quiz_question_kind"))
    status: Mapped[QuestionStatus] = mapped_column(
        str_enum(QuestionStatus, "quiz_question_status"), default=QuestionStatus.active, index=True
    )
    difficulty: Mapped[int] = mapped_column(default=3)  # 1 (easy) .. 5 (hard)
    source: Mapped[str | None] = mapped_column(String(200))
    # Hash of the first version's content: re-importing the same question adds nothing.
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    current_version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    topics: Mapped[list[Topic]] = relationship(secondary="quiz_question_topics", lazy="selectin")
    versions: Mapped[list[QuestionVersion]] = relationship(
        back_populates="question", order_by="QuestionVersion.number"
    )


class QuestionVersion(Base):
    """Immutable content of one edit; answers point here, never at the mutable question."""

    __tablename__ = "quiz_question_versions"
    __table_args__ = (UniqueConstraint("question_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("quiz_questions.id"))
    number: Mapped[int] = mapped_column()
    stem: Mapped[str] = mapped_column(Text)
    # choice kinds: [{"key": "A", "text": ...}]; scenario: []
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # choice kinds: "A" / "AC"; scenario: "" (answers live in parts)
    answer: Mapped[str] = mapped_column(String(16), default="")
    # scenario only: [{"stem", "options", "answer", "multiple"}]
    parts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    explanation: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    question: Mapped[Question] = relationship(back_populates="versions")


class ImportBatch(Base):
    """One real import (all-or-nothing): what file, how many added/skipped."""

    __tablename__ = "quiz_import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    file_format: Mapped[str] = mapped_column(String(16))
    file_hash: Mapped[str] = mapped_column(String(64), index=True)
    added: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnswerEvent(Base):
    """Every graded answer (practice or attempt): input to the ability model and portraits."""

    __tablename__ = "quiz_answer_events"
    __table_args__ = (
        UniqueConstraint("source", "source_id", "question_id"),
        Index("ix_quiz_answer_events_person_time", "person_id", "answered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    question_id: Mapped[int] = mapped_column(ForeignKey("quiz_questions.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("quiz_question_versions.id"))
    correct: Mapped[bool] = mapped_column()
    score: Mapped[float] = mapped_column(default=0.0)  # fraction 0..1 (scenario: partial)
    source: Mapped[str] = mapped_column(String(16))  # practice | attempt
    source_id: Mapped[int] = mapped_column()
    answered_at: Mapped[datetime] = mapped_column()


class ReviewCard(Base):
    """FSRS state of a question a worker got wrong (spaced review)."""

    __tablename__ = "quiz_review_cards"
    __table_args__ = (UniqueConstraint("person_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    question_id: Mapped[int] = mapped_column(ForeignKey("quiz_questions.id"))
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PracticeItem(Base):
    __tablename__ = "quiz_practice_items"
    __table_args__ = (
        UniqueConstraint("person_id", "day", "question_id"),
        Index("ix_quiz_practice_items_person_day", "person_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    day: Mapped[date] = mapped_column()  # Asia/Shanghai
    position: Mapped[int] = mapped_column()
    question_id: Mapped[int] = mapped_column(ForeignKey("quiz_questions.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("quiz_question_versions.id"))
    reason: Mapped[str] = mapped_column(String(16))  # due | weak | fresh
    choice: Mapped[str | None] = mapped_column(String(64))
    correct: Mapped[bool | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    points_awarded: Mapped[int] = mapped_column(default=0)
    points_note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Paper(Base):
    __tablename__ = "quiz_papers"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    mode: Mapped[PaperMode] = mapped_column(str_enum(PaperMode, "quiz_paper_mode"))
    question_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # [{"topic": "法律法规", "difficulty": 3 | None, "count": 2}]
    blueprint: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    duration_seconds: Mapped[int] = mapped_column(default=1800)
    grace_seconds: Mapped[int] = mapped_column(default=5)
    attempts_allowed: Mapped[int] = mapped_column(default=1)
    grading: Mapped[Grading] = mapped_column(str_enum(Grading, "quiz_grading"), default=Grading.highest)
    certainty_marking: Mapped[bool] = mapped_column(default=False)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Competition(Base):
    __tablename__ = "quiz_competitions"
    # the due-notice sweep (scheduled, starting soon); the finalise sweep uses the prefix
    __table_args__ = (Index("ix_quiz_competitions_status_starts", "status", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    paper_id: Mapped[int] = mapped_column(ForeignKey("quiz_papers.id"))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    freeze_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[CompetitionStatus] = mapped_column(
        str_enum(CompetitionStatus, "quiz_competition_status"), default=CompetitionStatus.scheduled
    )
    finalized_at: Mapped[datetime | None] = mapped_column()
    # the nearest notice stage already queued (minutes before start: 1440, then 30)
    notified_minutes: Mapped[int | None] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attempt(Base):
    __tablename__ = "quiz_attempts"
    __table_args__ = (
        UniqueConstraint("paper_id", "person_id", "number"),
        # one attempt per worker per competition (NULL competition_id: plain tests)
        UniqueConstraint("competition_id", "person_id"),
        Index("ix_quiz_attempts_competition_rank", "competition_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("quiz_papers.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    competition_id: Mapped[int | None] = mapped_column(ForeignKey("quiz_competitions.id"))
    number: Mapped[int] = mapped_column(default=1)
    status: Mapped[AttemptStatus] = mapped_column(
        str_enum(AttemptStatus, "quiz_attempt_status"), default=AttemptStatus.in_progress
    )
    bracket: Mapped[int] = mapped_column(default=1)  # the worker's level when it started
    started_at: Mapped[datetime] = mapped_column()
    deadline_at: Mapped[datetime] = mapped_column()
    submitted_at: Mapped[datetime | None] = mapped_column()
    marks: Mapped[float] = mapped_column(default=0.0)
    max_marks: Mapped[float] = mapped_column(default=0.0)
    answered: Mapped[int] = mapped_column(default=0)
    correct: Mapped[int] = mapped_column(default=0)
    accuracy_bp: Mapped[int] = mapped_column(default=0)  # correct/answered in 1/10000
    elapsed_ms: Mapped[int] = mapped_column(default=0)  # server-measured

    items: Mapped[list[AttemptItem]] = relationship(order_by="AttemptItem.position", lazy="selectin")


class AttemptItem(Base):
    __tablename__ = "quiz_attempt_items"
    __table_args__ = (UniqueConstraint("attempt_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("quiz_attempts.id"))
    position: Mapped[int] = mapped_column()
    question_id: Mapped[int] = mapped_column(ForeignKey("quiz_questions.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("quiz_question_versions.id"))
    # displayed label -> original key, per part (choice kinds: one part)
    option_order: Mapped[list[list[str]]] = mapped_column(JSON)
    response: Mapped[list[str] | None] = mapped_column(JSON)  # displayed labels per part
    certainty: Mapped[int | None] = mapped_column()
    saved_at: Mapped[datetime | None] = mapped_column()
    marks: Mapped[float] = mapped_column(default=0.0)
    correct: Mapped[bool | None] = mapped_column()


class PointEntry(Base):
    """Append-only points ledger; balances are SUM(delta). Corrections are new rows."""

    __tablename__ = "quiz_point_entries"
    __table_args__ = (
        UniqueConstraint("person_id", "source_type", "source_id"),
        Index("ix_quiz_point_entries_person_type_time", "person_id", "source_type", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    delta: Mapped[int] = mapped_column()
    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))
    rules_version: Mapped[str] = mapped_column(String(32))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerLevel(Base):
    """The last computed star level (recomputed quarterly and on demand)."""

    __tablename__ = "quiz_worker_levels"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    level: Mapped[int] = mapped_column(default=1)
    rules_version: Mapped[str] = mapped_column(String(32))
    computed_at: Mapped[datetime] = mapped_column()


class LevelSnapshot(Base):
    """A worker's level as assessed for a quarter (``2026Q1``): one row per worker and
    quarter, so the quarterly run is idempotent and workers can see their history."""

    __tablename__ = "quiz_level_snapshots"
    __table_args__ = (UniqueConstraint("person_id", "quarter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    quarter: Mapped[str] = mapped_column(String(8))
    level: Mapped[int] = mapped_column()
    previous_level: Mapped[int] = mapped_column()
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rules_version: Mapped[str] = mapped_column(String(32))
    computed_at: Mapped[datetime] = mapped_column()
