from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from models.quiz import Question, QuestionKind, QuestionTopic, Topic
from services.demo.quiz import DATA, TOPICS
from services.quiz import importers


def test_demo_bank_has_sixty_plus_questions_over_all_eight_topics_and_loads_once(db):
    for _ in range(2):
        for name in ("quiz_bank.gift", "quiz_scenarios.csv"):
            report = importers.run_import(db, None, (DATA / name).read_bytes(), name)
            assert report["errors"] == []
    assert db.scalar(select(func.count()).select_from(Question)) >= 60
    per_topic = Counter(
        db.scalars(select(Topic.name).join(QuestionTopic, QuestionTopic.topic_id == Topic.id))
    )
    assert set(per_topic) == set(TOPICS) and min(per_topic.values()) >= 7
    kinds = set(db.scalars(select(Question.kind)))
    assert kinds == set(QuestionKind)


def test_cli_import_dry_run_lists_bad_lines_and_real_import_is_idempotent(app, db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "题型,题干,选项A,选项B,选项C,选项D,选项E,选项F,答案,解析,知识点,难度,来源,情景编号\n"
        "单选题,好题,甲,乙,,,,,A,,法律法规,2,,\n单选题,坏题,甲,乙,,,,,Z,,法律法规,2,,\n",
        encoding="utf-8",
    )
    runner = app.test_cli_runner()
    out = runner.invoke(args=["quiz", "import", str(bad), "--dry-run"])
    assert "第 3 行" in out.output and out.exit_code == 0
    refused = runner.invoke(args=["quiz", "import", str(bad)])
    assert refused.exit_code == 1
    assert db.scalar(select(func.count()).select_from(Question)) == 0
    gift = DATA / "quiz_bank.gift"
    assert "新增 64 题" in runner.invoke(args=["quiz", "import", str(gift)]).output
    assert "新增 0 题" in runner.invoke(args=["quiz", "import", str(gift)]).output
