from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from core.errors import ValidationFailed
from models.quiz import ImportBatch, Question, QuestionKind, QuestionVersion
from services.quiz import formats, importers
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


# --- GIFT per Moodle's format (https://docs.moodle.org/en/GIFT_format) ---


def gift(text: str, topics: tuple[str, ...] = ("法律法规",)) -> tuple[list, list]:
    return formats.parse_gift(text.encode(), list(topics))


def test_gift_escapes_keep_control_characters_as_text():
    drafts, errors = gift(
        "哪种语言的名字里有井号？{\n=C\\# 语言#对，读作 C sharp\n"
        "~Go\\~ 语言 \\= 1\\:1#不对\n~第一行\\n第二行\n}"
    )
    assert errors == []
    assert [o["text"] for o in drafts[0].options] == ["C# 语言", "Go~ 语言 = 1:1", "第一行\n第二行"]
    assert drafts[0].answer == "A" and drafts[0].kind == QuestionKind.single


def test_gift_escaped_braces_in_the_stem_stay_text():
    drafts, errors = gift("集合 \\{1, 2\\} 有几个元素？{=2个 ~3个}")
    assert errors == []
    assert drafts[0].stem == "集合 {1, 2} 有几个元素？"
    assert [o["text"] for o in drafts[0].options] == ["2个", "3个"]


MOODLE_EXPORT = """\
// question: 0  name: Switch category to $course$/top/Default for 网格员培训/法律法规
$CATEGORY: $course$/top/Default for 网格员培训/法律法规


// question: 101  name: Q1
::Q1::[html]<p>下列说法正确的是？</p><p>（单选）</p>{
\t=<p>C\\# 语言 &amp; Java</p>#<p>对</p>
\t~<b>Go</b>#<p>错</p>
\t####<p>参见&nbsp;第\\=3 章<br>第二行</p>
}

// question: 102  name: Q2
::Q2::[html]<p>网格员可以将居民身份证号码转发到工作群。</p>{FALSE#<p>错了</p>#<p>对了</p>####<p>不得随意公开。</p>}

// question: 103  name: Q3
::Q3::[moodle]下列属于敏感个人信息的有？{
\t~%50%身份证号码
\t~%50%医疗健康信息
\t~%-100%公开的单位名称
}

// question: 104  name: Q4
::Q4::[html]<p>只有一个完全正确的选项</p>{
\t~%100%[plain]甲 <b>
\t~%-50%乙
\t~%-50%丙
}

"""


def test_gift_moodle_export_with_bom_and_crlf_imports(db):
    content = "\ufeff".encode() + MOODLE_EXPORT.replace("\n", "\r\n").encode()
    drafts, errors = formats.parse_gift(content, [])
    assert errors == []
    q1, q2, q3, q4 = drafts
    assert [d.topics for d in drafts] == [["法律法规"]] * 4
    assert [d.line for d in drafts] == [6, 13, 16, 23]
    assert q1.stem == "下列说法正确的是？\n（单选）" and q1.source == "Q1"
    assert [o["text"] for o in q1.options] == ["C# 语言 & Java", "Go"] and q1.answer == "A"
    assert q1.explanation == "参见 第=3 章\n第二行"
    assert (q2.kind, q2.answer, q2.stem) == (
        QuestionKind.true_false,
        "B",
        "网格员可以将居民身份证号码转发到工作群。",
    )
    assert q2.explanation == "不得随意公开。"
    assert (q3.kind, q3.answer, q3.stem) == (QuestionKind.multiple, "AB", "下列属于敏感个人信息的有？")
    assert (q4.kind, q4.answer) == (QuestionKind.single, "A")
    assert [o["text"] for o in q4.options] == ["甲 <b>", "乙", "丙"]
    report = importers.run_import(db, None, content, "moodle.gift", now=NOW)
    assert report["added"] == 4 and report["errors"] == []


@pytest.mark.parametrize(
    ("block", "answer", "explanation"),
    [
        ("{T#错误时的反馈#正确时的反馈}", "A", ""),
        ("{TRUE}", "A", ""),
        ("{F}", "B", ""),
        ("{FALSE####总体反馈}", "B", "总体反馈"),
        ("{F#错误时的反馈#正确时的反馈####总体反馈}", "B", "总体反馈"),
    ],
)
def test_gift_true_false_forms(block, answer, explanation):
    drafts, errors = gift("网格员可以将居民身份证号码转发到工作群。" + block)
    assert errors == []
    (d,) = drafts
    assert (d.kind, d.answer, d.explanation) == (QuestionKind.true_false, answer, explanation)
    assert d.stem == "网格员可以将居民身份证号码转发到工作群。"


def test_gift_missing_word_becomes_single_choice_with_a_blank():
    drafts, errors = gift("::印度::甘地的生日是十月{~15日 =2日 ~3日}，是印度的节日。")
    assert errors == []
    (d,) = drafts
    assert d.stem == "甘地的生日是十月____，是印度的节日。"
    assert (d.kind, d.answer) == (QuestionKind.single, "B")
    assert [o["text"] for o in d.options] == ["15日", "2日", "3日"]


@pytest.mark.parametrize(
    ("block", "kind"),
    [
        ("谁葬在格兰特墓？{=没有人 =无人}", "简答题"),
        ("谁葬在格兰特墓？{=没有人}", "简答题"),
        ("谁葬在格兰特墓？{没有人}", "简答题"),
        ("请匹配。{=中国 -> 北京 =日本 -> 东京 =法国 -> 巴黎}", "匹配题"),
        ("格兰特生于哪一年？{#1822:5}", "数值题"),
        ("请简述网格员的职责。{}", "论述题"),
        ("请简述网格员的职责。{####参考答案}", "论述题"),
    ],
)
def test_gift_unsupported_question_types_are_refused_with_line(block, kind):
    text = "// 说明\n::ok:: 正确的是？{=甲 ~乙}\n\n// question: 7\n" + block + "\n"
    drafts, errors = gift(text)
    assert len(drafts) == 1
    assert errors == [(5, f"不支持的 GIFT 题型：{kind}（仅支持单选、多选、判断）")]


def test_gift_description_and_brace_mistakes_are_errors_but_comment_blocks_are_not():
    text = (
        "// 只有注释的块\n// question: 0  name: 说明\n\n"
        "$CATEGORY: $course$/top/安全//应急\n\n"
        "这是一段说明文字，没有答案部分。\n\n"
        "第一题？{=甲 ~乙}\n第二题忘了空行？{=甲 ~乙}\n\n"
        "答案中间有空行？{\n=甲\n\n~乙\n}\n\n"
        "// difficulty: 2\n好题？{=甲 ~乙}\n"
    )
    drafts, errors = gift(text)
    assert [e[0] for e in errors] == [6, 8, 11, 14]
    assert "缺少 {…} 答案部分" in errors[0][1]
    assert all("花括号" in why for _, why in errors[1:])
    (d,) = drafts
    assert (d.stem, d.topics, d.difficulty, d.line) == ("好题？", ["安全/应急"], 2, 18)


@pytest.mark.parametrize(
    ("answers", "kind", "answer"),
    [
        ("~%50%甲 ~%50%乙 ~%-100%丙", QuestionKind.multiple, "AB"),
        ("~%33.33333%甲 ~%33.33333%乙 ~%33.33333%丙 ~%-100%丁", QuestionKind.multiple, "ABC"),
        ("~%100%甲 ~%-50%乙", QuestionKind.single, "A"),
        ("~%-50%甲 ~%100%乙 ~丙", QuestionKind.single, "B"),
        ("=甲 ~%50%乙 ~丙", QuestionKind.single, "A"),
    ],
)
def test_gift_weighted_choices(answers, kind, answer):
    drafts, errors = gift("下列正确的是？{" + answers + "}")
    assert errors == []
    assert (drafts[0].kind, drafts[0].answer) == (kind, answer)


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ("~%50%甲 ~%-100%乙", "权重之和应为 100%"),
        ("~%50%甲 ~%30%乙 ~丙", "权重之和应为 100%"),
        ("=甲 =乙 ~丙", "恰好有一个"),
        ("~甲 ~乙", "没有正确答案"),
        ("甲 ~乙 =丙", "应以 = 或 ~ 开头"),
    ],
)
def test_gift_choice_mistakes_are_refused(answers, reason):
    drafts, errors = gift("第一行\n下列正确的是？{" + answers + "}")
    assert drafts == []
    assert len(errors) == 1 and errors[0][0] == 1 and reason in errors[0][1]


def test_gift_question_spread_over_lines_like_moodle_writes_it():
    text = (
        "// difficulty: 4\n::法-9::\n下列哪些属于\n网格员的职责？\n{\n"
        "    ~%50%信息采集 # 对\n    ~%50%矛盾调解\n    ~%-100%执法处罚 # 网格员无执法权\n"
        "    #### 网格员不具备行政执法权。\n}\n"
    )
    drafts, errors = gift(text)
    assert errors == []
    (d,) = drafts
    assert (
        d.stem == "下列哪些属于\n网格员的职责？" and d.source == "法-9" and d.difficulty == 4 and d.line == 2
    )
    assert [o["text"] for o in d.options] == ["信息采集", "矛盾调解", "执法处罚"]
    assert (d.kind, d.answer, d.explanation) == (QuestionKind.multiple, "AB", "网格员不具备行政执法权。")


def test_gift_image_in_html_is_refused_not_dropped():
    drafts, errors = gift('::Q::[html]<p>图中是什么标志？</p><img src="@@PLUGINFILE@@/a.png">{=禁烟 ~禁火}')
    assert drafts == [] and len(errors) == 1 and "图片" in errors[0][1]


def test_gift_file_with_an_unsupported_question_is_refused_whole(db):
    text = GIFT + "\n::简答::谁葬在格兰特墓？{=没有人}\n"
    with pytest.raises(ValidationFailed) as exc:
        importers.run_import(db, None, text.encode(), "bank.gift", now=NOW)
    lines = GIFT.count("\n") + 2
    assert exc.value.details["errors"] == [
        {"line": lines, "reason": "不支持的 GIFT 题型：简答题（仅支持单选、多选、判断）"}
    ]
    assert count(db) == 0


def test_dry_run_reports_values_longer_than_the_bank_stores_with_their_lines(db):
    """On PostgreSQL these rows passed the dry run and then failed the real import with
    a generic error: the lengths are checked with the rest, line by line."""
    long_topic = ["单选题", "知识点过长", "甲", "乙", "", "", "", "", "A", "", "信" * 51, "3", "", ""]
    long_source = ["单选题", "来源过长", "甲", "乙", "", "", "", "", "A", "", "信息采集", "3", "来" * 201, ""]
    content = xlsx([ROW_OK, long_topic, long_source])
    dry = importers.run_import(db, None, content, "long.xlsx", dry_run=True, now=NOW)
    assert [e["line"] for e in dry["errors"]] == [3, 4], dry["errors"]
    assert "50" in dry["errors"][0]["reason"] and "200" in dry["errors"][1]["reason"]
    seven = "::多::选项太多 {\n" + "".join(f"~选项{i}\n" for i in range(6)) + "=正确\n}\n"
    gift = importers.run_import(db, None, seven.encode(), "x.gift", topics=["法律法规"], dry_run=True)
    assert gift["errors"] == [{"line": 1, "reason": "选项最多 6 个"}]
    with pytest.raises(ValidationFailed):
        importers.run_import(db, None, content, "long.xlsx", now=NOW)
    assert count(db) == 0
