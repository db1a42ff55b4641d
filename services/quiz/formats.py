"""Parsers for question files: the .xlsx/CSV template, Aiken and a Moodle GIFT subset (gift.py).

Each parser returns ``(drafts, errors)`` where errors are ``(line, reason)`` with the
1-based line (row) in the source file, so a dry run can list every bad row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from models.quiz import QuestionKind
from services.quiz.bank import TRUE_FALSE_OPTIONS, Draft, check_draft, normalize_choice

Errors = list[tuple[int, str]]
COLUMNS = [
    "题型",
    "题干",
    "选项A",
    "选项B",
    "选项C",
    "选项D",
    "选项E",
    "选项F",
    "答案",
    "解析",
    "知识点",
    "难度",
    "来源",
    "情景编号",
]
KINDS = {
    "单选": QuestionKind.single,
    "单选题": QuestionKind.single,
    "single": QuestionKind.single,
    "多选": QuestionKind.multiple,
    "多选题": QuestionKind.multiple,
    "multiple": QuestionKind.multiple,
    "判断": QuestionKind.true_false,
    "判断题": QuestionKind.true_false,
    "true_false": QuestionKind.true_false,
    "情景": QuestionKind.scenario,
    "情景题": QuestionKind.scenario,
    "scenario": QuestionKind.scenario,
}
SUB_KINDS = {"情景小题", "小题", "part"}
TRUE_WORDS = {"正确", "对", "是", "√", "T", "TRUE", "A"}
FALSE_WORDS = {"错误", "错", "否", "×", "F", "FALSE", "B"}


def _topics(raw: str) -> list[str]:
    return [t.strip() for t in re.split(r"[,，;；、|]", raw or "") if t.strip()]


def _difficulty(raw: str) -> int:
    raw = (raw or "").strip()
    if not raw:
        return 3
    if not raw.isdigit():
        raise ValueError(f"难度“{raw}”不是 1～5 的整数")
    return int(raw)


def _tf_answer(raw: str) -> str:
    word = raw.strip().upper()
    if word in TRUE_WORDS:
        return "A"
    if word in FALSE_WORDS:
        return "B"
    raise ValueError(f"判断题答案“{raw}”应为 正确/错误")


def rows_from_table(rows: Iterator[tuple[int, list[str]]]) -> tuple[list[Draft], Errors]:
    """Template rows (line, cells) -> drafts; scenario parents collect their sub-rows."""
    drafts: list[Draft] = []
    errors: Errors = []
    scenarios: dict[str, Draft] = {}
    pending_parts: list[tuple[int, str, dict]] = []
    for line, cells in rows:
        rec = dict(zip(COLUMNS, [(c or "").strip() for c in cells] + [""] * len(COLUMNS), strict=False))
        if not any(rec.values()):
            continue
        try:
            kind_word = rec["题型"]
            options = [{"key": k, "text": rec[f"选项{k}"]} for k in "ABCDEF" if rec[f"选项{k}"]]
            if kind_word in SUB_KINDS:
                answer = normalize_choice(rec["答案"])
                part = {
                    "stem": rec["题干"],
                    "options": options,
                    "answer": answer,
                    "multiple": len(answer) > 1,
                }
                pending_parts.append((line, rec["情景编号"], part))
                continue
            kind = KINDS.get(kind_word)
            if kind is None:
                raise ValueError(f"未知题型“{kind_word}”")
            d = Draft(
                kind=kind,
                stem=rec["题干"],
                explanation=rec["解析"],
                topics=_topics(rec["知识点"]),
                difficulty=_difficulty(rec["难度"]),
                source=rec["来源"] or None,
                line=line,
            )
            if kind == QuestionKind.true_false:
                d.options, d.answer = list(TRUE_FALSE_OPTIONS), _tf_answer(rec["答案"])
            elif kind == QuestionKind.scenario:
                if not rec["情景编号"]:
                    raise ValueError("情景题缺少情景编号")
                scenarios[rec["情景编号"]] = d
            else:
                d.options, d.answer = options, normalize_choice(rec["答案"])
            drafts.append(d)
        except ValueError as exc:
            errors.append((line, str(exc)))
    for line, code, part in pending_parts:
        if code not in scenarios:
            errors.append((line, f"情景小题的情景编号“{code}”没有对应的情景题"))
        else:
            scenarios[code].parts.append(part)
    return drafts, errors


def parse_csv(content: bytes) -> tuple[list[Draft], Errors]:
    text = _decode(content)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lstrip("\ufeff") for h in header[:2]] != COLUMNS[:2]:
        return [], [(1, "表头应与模板一致：" + ",".join(COLUMNS))]

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1

    return rows_from_table(rows())


def parse_xlsx(content: bytes) -> tuple[list[Draft], Errors]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any unreadable workbook is the same user error
        return [], [(0, "无法读取 Excel 文件，请使用下载的模板（.xlsx）")]
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    header = next(it, None)
    if header is None or [str(h or "").strip() for h in header[:2]] != COLUMNS[:2]:
        return [], [(1, "表头应与模板一致：" + ",".join(COLUMNS))]
    rows = ((i, ["" if c is None else str(c) for c in cells]) for i, cells in enumerate(it, start=2))
    return rows_from_table(rows)


def parse_aiken(content: bytes, topics: list[str], difficulty: int = 3) -> tuple[list[Draft], Errors]:
    """Aiken: stem lines, "A. text" options, "ANSWER: X". Extension lines (optional):
    "TOPIC: 法律法规", "DIFFICULTY: 3", "EXPLANATION: ..." before ANSWER."""
    drafts: list[Draft] = []
    errors: Errors = []
    for start, lines in _blocks(_decode(content)):
        d = Draft(kind=QuestionKind.single, stem="", topics=list(topics), difficulty=difficulty, line=start)
        stem: list[str] = []
        try:
            for text in lines:
                m = re.match(r"^([A-Z])[.)、．]\s*(.+)$", text)
                if m and stem:
                    d.options.append({"key": m.group(1), "text": m.group(2).strip()})
                elif text.upper().startswith("ANSWER:"):
                    d.answer = normalize_choice(text.split(":", 1)[1])
                elif text.upper().startswith("TOPIC:"):
                    d.topics = _topics(text.split(":", 1)[1])
                elif text.upper().startswith("DIFFICULTY:"):
                    d.difficulty = _difficulty(text.split(":", 1)[1])
                elif text.upper().startswith("EXPLANATION:"):
                    d.explanation = text.split(":", 1)[1].strip()
                elif d.options:
                    raise ValueError(f"选项之后出现无法识别的行“{text[:20]}”")
                else:
                    stem.append(text)
            d.stem = "\n".join(stem)
            if not d.answer:
                raise ValueError("缺少 ANSWER: 行")
            drafts.append(d)
        except ValueError as exc:
            errors.append((start, str(exc)))
    return drafts, errors


def parse_gift(content: bytes, topics: list[str], difficulty: int = 3) -> tuple[list[Draft], Errors]:
    """Moodle GIFT subset (single, multiple, true/false); see services.quiz.gift."""
    from services.quiz import gift  # gift imports this module's helpers

    return gift.parse_gift(content, topics, difficulty)


def _blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Blank-line separated blocks with the line number of their first line."""
    block: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            if block:
                yield start, block
            block = []
            continue
        if not block:
            start = n
        block.append(line)
    if block:
        yield start, block


def _decode(content: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ValueError("文件编码无法识别，请使用 UTF-8")


def validate(drafts: list[Draft], errors: Errors) -> Errors:
    """Content checks on parsed drafts, appended to the parse errors, sorted by line."""
    for d in drafts:
        why = check_draft(d)
        if why:
            errors.append((d.line, why))
    return sorted(errors)
