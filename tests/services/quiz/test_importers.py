from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from core.errors import ValidationFailed
from models.quiz import ImportBatch, Question, QuestionKind, QuestionVersion
from services.quiz import importers
from services.quiz.formats import COLUMNS
from tests.services.quiz.factories import NOW

GIFT = """// 法律法规题
$CATEGORY: 法律法规

// difficulty: 2
::法-1:: 《中华人民共和国个人信息保护法》自哪一年起施行？ {
=2021年
~2019年
~2020年
~2022年
#### 个人信息保护法于2021年11月1日起施行。
}

::法-2:: 网格员可以将居民身份证号码转发到工作群。 {F #### 不得随意公开个人信息。}

::法-3:: 下列属于敏感个人信息的有？ {
~%50%身份证号码
~%50%医疗健康信息
~%-100%公开的单位名称
#### 敏感个人信息包括身份证号码、医疗健康信息等。
}
"""


def count(db, model=Question) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_gift_file_imported_twice_adds_nothing_the_second_time(db):
    first = importers.run_import(db, None, GIFT.encode(), "bank.gift", now=NOW)
    assert first["added"] == 3 and first["errors"] == []
    again = importers.run_import(db, None, GIFT.encode(), "bank.gift", now=NOW)
    assert again["added"] == 0 and again["skipped"] == 3
    assert count(db) == 3
    kinds = sorted(str(k) for k in db.scalars(select(Question.kind)))
    assert kinds == ["multiple", "single", "true_false"]
    q1 = db.scalar(select(QuestionVersion).where(QuestionVersion.stem.like("%个人信息保护法%")))
    assert q1.answer == "A" and "2021年11月1日" in q1.explanation
    assert db.get(Question, q1.question_id).difficulty == 2


def xlsx(rows: list[list[str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(COLUMNS)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


ROW_OK = [
    "单选题",
    "发现燃气泄漏首先应？",
    "开窗通风并关阀",
    "打开电灯检查",
    "拨打电话",
    "",
    "",
    "",
    "A",
    "严禁明火和电火花。",
    "应急处置",
    "2",
    "",
    "",
]


def test_xlsx_file_imported_twice_adds_nothing_the_second_time(db):
    content = xlsx(
        [
            ROW_OK,
            [
                "判断题",
                "矛盾纠纷应就地化解。",
                "",
                "",
                "",
                "",
                "",
                "",
                "正确",
                "",
                "矛盾纠纷化解",
                "1",
                "",
                "",
            ],
        ]
    )
    assert importers.run_import(db, None, content, "a.xlsx", now=NOW)["added"] == 2
    assert importers.run_import(db, None, content, "a.xlsx", now=NOW)["added"] == 0
    assert count(db) == 2
    assert count(db, ImportBatch) == 2


def test_file_with_bad_rows_is_refused_whole_with_line_numbers(db):
    bad = ["单选题", "缺少答案的题", "甲", "乙", "", "", "", "", "", "", "信息采集", "3", "", ""]
    wrong_key = ["单选题", "答案越界", "甲", "乙", "", "", "", "", "D", "", "信息采集", "3", "", ""]
    content = xlsx([ROW_OK, bad, wrong_key])
    dry = importers.run_import(db, None, content, "b.xlsx", dry_run=True, now=NOW)
    assert [e["line"] for e in dry["errors"]] == [3, 4]
    assert "缺少答案" in dry["errors"][0]["reason"] and "D" in dry["errors"][1]["reason"]
    assert dry["would_add"] == 1
    with pytest.raises(ValidationFailed) as exc:
        importers.run_import(db, None, content, "b.xlsx", now=NOW)
    assert exc.value.code == "import_rejected"
    assert [e["line"] for e in exc.value.details["errors"]] == [3, 4]
    assert count(db) == 0 and count(db, ImportBatch) == 0


def test_csv_scenario_rows_become_one_question_with_sub_questions(db):
    text = ",".join(COLUMNS) + "\n"
    text += "情景题,居民反映楼上漏水多次协商未果,,,,,,,,先调解后上报,矛盾纠纷化解,3,,S1\n"
    text += "情景小题,首先应当？,上门了解情况,直接报警,,,,,A,,,,,S1\n"
    text += "情景小题,可借助哪些力量？,人民调解员,物业,无关路人,,,,AB,,,,,S1\n"
    text += "情景小题,孤儿小题,甲,乙,,,,,A,,,,,S9\n"
    dry = importers.run_import(db, None, text.encode(), "s.csv", dry_run=True, now=NOW)
    assert dry["errors"] == [{"line": 5, "reason": "情景小题的情景编号“S9”没有对应的情景题"}]
    report = importers.run_import(
        db, None, text.encode()[: text.encode().rfind("情景小题,孤儿".encode())], "s.csv", now=NOW
    )
    assert report["added"] == 1
    v = db.scalar(select(QuestionVersion))
    assert [p["answer"] for p in v.parts] == ["A", "AB"] and v.parts[1]["multiple"] is True


def test_aiken_with_topic_line_imports_single_choice(db):
    text = (
        "社区网格员日常走访频次一般要求？\nA. 每月至少一次\nB. 每年一次\nTOPIC: 服务群众\nANSWER: A\n"
        "\n坏题\nA. 甲\n"
    )
    dry = importers.run_import(db, None, text.encode(), "q.txt", dry_run=True, now=NOW)
    assert dry["errors"] == [{"line": 7, "reason": "缺少 ANSWER: 行"}]
    assert dry["would_add"] == 1


def test_downloadable_template_parses_back_cleanly(db):
    content = importers.template_xlsx()
    assert load_workbook(io.BytesIO(content)).sheetnames == ["题目", "说明"]
    report = importers.run_import(db, None, content, "template.xlsx", now=NOW)
    assert report["errors"] == [] and report["added"] == 4
    assert db.scalar(select(Question).where(Question.kind == QuestionKind.scenario)) is not None


def test_unreadable_xlsx_is_a_clear_error_not_a_crash(db):
    dry = importers.run_import(db, None, b"not a zip", "x.xlsx", dry_run=True, now=NOW)
    assert dry["errors"][0]["reason"].startswith("无法读取")
