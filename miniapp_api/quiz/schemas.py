"""Request models of the quiz API (pydantic, extra fields forbidden)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from core.validation import Model
from models.quiz import QuestionKind
from services.quiz.bank import Draft


class OptionIn(Model):
    key: str = Field(pattern=r"^[A-F]$")
    text: str = Field(min_length=1, max_length=500)


class PartIn(Model):
    stem: str = Field(min_length=1, max_length=2000)
    options: list[OptionIn] = Field(min_length=2, max_length=6)
    answer: str = Field(pattern=r"^[A-F]{1,6}$")


class QuestionIn(Model):
    kind: QuestionKind
    stem: str = Field(min_length=1, max_length=5000)
    options: list[OptionIn] = Field(default_factory=list, max_length=6)
    answer: str = Field("", pattern=r"^[A-F]{0,6}$")
    parts: list[PartIn] = Field(default_factory=list, max_length=10)
    explanation: str = Field("", max_length=5000)
    topics: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(min_length=1, max_length=5)
    difficulty: int = Field(3, ge=1, le=5)
    source: str | None = Field(None, max_length=200)

    def draft(self) -> Draft:
        parts = [
            {
                "stem": p.stem,
                "options": [o.model_dump() for o in p.options],
                "answer": p.answer,
                "multiple": len(p.answer) > 1,
            }
            for p in self.parts
        ]
        options = [o.model_dump() for o in self.options]
        if self.kind == QuestionKind.true_false and not options:
            from services.quiz.bank import TRUE_FALSE_OPTIONS

            options = list(TRUE_FALSE_OPTIONS)
        return Draft(
            kind=self.kind,
            stem=self.stem,
            options=options,
            answer=self.answer,
            parts=parts,
            explanation=self.explanation,
            topics=self.topics,
            difficulty=self.difficulty,
            source=self.source,
        )


class StatusIn(Model):
    status: Literal["draft", "active", "retired"]


class ImportIn(Model):
    filename: str = Field(min_length=1, max_length=200)
    content_base64: str = Field(min_length=1, max_length=14_000_000)
    format: Literal["xlsx", "csv", "aiken", "gift"] | None = None
    topics: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=5
    )
    difficulty: int = Field(3, ge=1, le=5)
    dry_run: bool = False


class ListQuery(Model):
    cursor: str | None = None
    limit: int = Field(20, ge=1, le=100)
    topic: str | None = None
    status: Literal["draft", "active", "retired"] | None = None


class BlueprintRule(Model):
    topic: str = Field(min_length=1, max_length=50)
    difficulty: int | None = Field(None, ge=1, le=5)
    count: int = Field(ge=1, le=100)


class PaperIn(Model):
    title: str = Field(min_length=1, max_length=200)
    mode: Literal["fixed", "blueprint"]
    question_ids: list[int] = Field(default_factory=list, max_length=200)
    blueprint: list[BlueprintRule] = Field(default_factory=list, max_length=50)
    duration_seconds: int = Field(1800, ge=60, le=6 * 3600)
    grace_seconds: int = Field(5, ge=0, le=60)
    attempts_allowed: int = Field(1, ge=1, le=20)
    grading: Literal["first", "highest", "last"] = "highest"
    certainty_marking: bool = False
    org_unit_id: int | None = Field(None, ge=1, description="试卷面向的组织；省略为培训员的管辖范围")


class CompetitionIn(Model):
    title: str = Field(min_length=1, max_length=200)
    paper_id: int = Field(ge=1)
    org_unit_id: int = Field(ge=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    freeze_at: AwareDatetime | None = None


class AdjustIn(Model):
    person_id: int = Field(ge=1)
    delta: int = Field(ge=-1000, le=1000)
    reason: str = Field(min_length=1, max_length=200)
    ref: str = Field(min_length=1, max_length=40, description="调用方生成的唯一编号，重试不会重复计分")


Choice = str | list[str]


class ChoiceIn(Model):
    choice: Choice = Field(description='如 A、AC；情景题按小题依次给出 ["A", "BC"]')


class SetAnswer(Model):
    item_id: int = Field(ge=1)
    choice: Choice


class SetIn(Model):
    answers: list[SetAnswer] = Field(min_length=1, max_length=50)


class SaveIn(Model):
    choice: Choice
    certainty: int | None = Field(None, ge=1, le=3)


class SubmitAnswer(Model):
    position: int = Field(ge=1)
    choice: Choice
    certainty: int | None = Field(None, ge=1, le=3)


class SubmitIn(Model):
    answers: list[SubmitAnswer] = Field(default_factory=list, max_length=200)


class BoardQuery(Model):
    scope_unit_id: int | None = Field(None, ge=1)
    bracket: str = Field("all", pattern=r"^(all|L[1-5])$")
    limit: int = Field(50, ge=1, le=200)


class PageQuery(Model):
    cursor: str | None = None
    limit: int = Field(20, ge=1, le=100)


class RankQuery(Model):
    scope: int | None = Field(None, ge=1, le=2**31 - 1, description="组织 id；省略为全部")
