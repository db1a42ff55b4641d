"""Moodle GIFT import (https://docs.moodle.org/en/GIFT_format), the subset that maps onto our kinds.

Follows Moodle's own reader (qformat_gift::readquestion) for how a question is cut up:
blank-line separated blocks, "//" comment lines, "::name::", an optional "[html]" /
"[moodle]" / "[plain]" / "[markdown]" format marker, one {…} answer block anywhere in
the text, "####" general feedback, "#" per-answer feedback and the escapes
``\\~ \\= \\# \\{ \\} \\: \\n \\\\``. The question type is decided the way Moodle decides it;
types we have no kind for are refused with the reason and the line of the question.
"""

from __future__ import annotations

import html
import re

from models.quiz import QuestionKind
from services.quiz.bank import TRUE_FALSE_OPTIONS, Draft
from services.quiz.formats import Errors, _blocks, _decode, _difficulty

SUPPORTED = "仅支持单选、多选、判断"
BLANK = "____"
# Escaped characters become private-use placeholders while the text is cut up, so an
# escaped "#", "=", "~" or brace is never taken for syntax; _text() turns them back.
_ESCAPES = {":": "\ue000", "#": "\ue001", "=": "\ue002", "{": "\ue003", "}": "\ue004", "~": "\ue005"}
_ESCAPES |= {"n": "\ue006", "\\": "\ue007"}
_RESTORE = str.maketrans({v: "\n" if k == "n" else k for k, v in _ESCAPES.items()})
_FORMAT = re.compile(r"\[(html|moodle|plain|markdown)\]", re.I)
_WEIGHT = re.compile(r"%(-?\d+(?:\.\d+)?)%")
_TRUE_FALSE = {"T": "A", "TRUE": "A", "F": "B", "FALSE": "B"}
_DIFFICULTY = re.compile(r"//\s*(?:difficulty|难度)\s*[:：]\s*(\S+)", re.I)
_BRACES = (
    "花括号不成对：每道题只能有一个 {…} 答案部分，题与题之间要空一行，答案部分中间不能有空行；"
    "文字中的 { } 请写成 \\{ \\}"
)


def parse_gift(content: bytes, topics: list[str], difficulty: int = 3) -> tuple[list[Draft], Errors]:
    """GIFT questions -> drafts, with (line, reason) for every refused question.

    Supported: multiple choice with one answer (``=right ~wrong``; also the missing-word
    form, where the {…} block sits inside the sentence and the stem shows ``____``),
    multiple answers (``~%50%right ~%50%right ~%-100%wrong``; positive weights must add
    up to 100 %; a single 100 % option is a single-choice question), true/false
    (``{T}``/``{TRUE}``/``{F}``/``{FALSE}``, any case, optionally ``#wrong-feedback#right-feedback``).
    Only the general feedback (``####…``) becomes the explanation: per-answer feedback
    (``#…`` after an option or after T/F) is dropped, as are partial-credit weights of
    wrong options and the partial credit of non-100 % options in a single-answer question.
    ``[html]`` text (and options/feedback of an html question) is turned into plain text;
    an ``<img>`` is refused, since the image would be lost.
    Refused: short answer, matching, numerical, essay, description (no {…}), several
    100 % answers in a single-answer question, no right answer (only unweighted ``~``),
    positive weights not adding up to 100 %.
    "$CATEGORY: $course$/top/…/法律法规" sets the topic (last path segment) of the
    questions after it; "// difficulty: N" (or "// 难度: N") sets the next question's
    difficulty. Errors point at the question's first non-comment line.
    """
    drafts: list[Draft] = []
    errors: Errors = []
    topic, diff = list(topics), difficulty
    for start, lines in _blocks(_decode(content)):
        body: list[str] = []
        first = start
        for n, text in enumerate(lines, start):
            m = _DIFFICULTY.match(text)
            if m:
                try:
                    diff = _difficulty(m.group(1))
                except ValueError as exc:
                    errors.append((n, str(exc)))
            elif text.startswith("//"):
                continue
            elif text.startswith("$CATEGORY:"):
                topic = _category(text[len("$CATEGORY:") :]) or list(topics)
            else:
                first = first if body else n
                body.append(text)
        if not body:
            continue
        try:
            drafts.append(_question("\n".join(body), topic, diff, first))
        except ValueError as exc:
            errors.append((first, str(exc)))
        diff = difficulty
    return drafts, errors


def _category(path: str) -> list[str]:
    """Last segment of a Moodle category path ("//" is an escaped "/" inside a name)."""
    names = [p.replace("//", "/").strip() for p in re.split(r"(?<!/)/(?!/)", path.strip())]
    names = [p for p in names if p]
    return names[-1:]


def _unsupported(kind: str) -> ValueError:
    return ValueError(f"不支持的 GIFT 题型：{kind}（{SUPPORTED}）")


def _question(text: str, topic: list[str], diff: int, line: int) -> Draft:
    text = re.sub(r"\\([:#={}~n\\])", lambda m: _ESCAPES[m.group(1)], text)
    title = None
    if text.startswith("::"):
        name, sep, rest = text[2:].partition("::")
        if sep:
            title, text = name.translate(_RESTORE).strip() or None, rest.strip()
        else:
            text = text[2:]
    if "{" not in text and "}" not in text:
        raise ValueError("缺少 {…} 答案部分")  # a GIFT "description": not a question
    start, end = text.find("{"), text.find("}")
    if text.count("{") != 1 or text.count("}") != 1 or end < start:
        raise ValueError(_BRACES)
    answers, tail = text[start + 1 : end].strip(), text[end + 1 :]
    fmt, stem = _text(text[:start] + (BLANK + tail if tail.strip() else ""), "moodle")
    answers, _, general = answers.rpartition("####") if "####" in answers else (answers, "", "")
    d = Draft(
        kind=QuestionKind.single,
        stem=stem,
        topics=list(topic),
        difficulty=diff,
        explanation=_text(general, fmt)[1],
        source=title,
        line=line,
    )
    answers = answers.strip()
    if not answers:
        raise _unsupported("论述题")
    if answers.startswith("#"):
        raise _unsupported("数值题")
    if "~" not in answers:  # only multiple choice has "~"
        if "=" in answers and "->" in answers:
            raise _unsupported("匹配题")
        word = answers.split("#", 1)[0].strip().upper()
        if word not in _TRUE_FALSE:
            raise _unsupported("简答题")
        d.kind, d.options, d.answer = QuestionKind.true_false, list(TRUE_FALSE_OPTIONS), _TRUE_FALSE[word]
        return d
    _choices(d, answers, fmt)
    return d


def _choices(d: Draft, answers: str, fmt: str) -> None:
    """Options and answer of a multiple-choice block, the kind decided by its marks and weights."""
    parts = re.split(r"([=~])", answers)
    if parts[0].strip():
        raise ValueError(f"选项应以 = 或 ~ 开头：“{_text(parts[0], fmt)[1][:20]}”")
    marks, raws = parts[1::2], parts[2::2]
    if len(marks) > 26:
        raise ValueError("选项过多（最多 26 个）")
    weights = []
    for i, (mark, raw) in enumerate(zip(marks, raws, strict=True)):
        raw = raw.strip()
        m = _WEIGHT.match(raw)
        weights.append(float(m.group(1)) if m else 100.0 if mark == "=" else 0.0)
        option = raw[m.end() :] if m else raw
        d.options.append({"key": chr(65 + i), "text": _text(option.split("#", 1)[0], fmt)[1]})
    right = [(o["key"], w) for o, w in zip(d.options, weights, strict=True) if w > 0]
    full = [key for key, w in right if w >= 100]
    if "=" in marks:  # Moodle's single-answer mode: the 100 % answer is the right one
        if len(full) != 1:
            raise ValueError(
                "单选题应恰好有一个 = 正确答案；多个正确答案请写成多选题（~%50%甲 ~%50%乙 ~%-100%丙）"
            )
        d.answer = full[0]
    elif len(right) == 1 and full:
        d.answer = full[0]
    elif not right:
        raise ValueError("没有正确答案：单选题用 = 标出正确选项，多选题用 ~%50% 这样的正权重")
    else:
        total = sum(w for _, w in right)
        if abs(total - 100) > 0.5:
            raise ValueError(f"多选题正确选项的权重之和应为 100%，现为 {total:g}%")
        d.kind, d.answer = QuestionKind.multiple, "".join(key for key, _ in right)


def _text(raw: str, fmt: str) -> tuple[str, str]:
    """(format, plain text) of one piece of GIFT text; a leading "[html]"-style marker overrides ``fmt``."""
    raw = raw.strip()
    m = _FORMAT.match(raw)
    if m:
        fmt, raw = m.group(1).lower(), raw[m.end() :]
    raw = raw.translate(_RESTORE)
    return fmt, (_html_to_text(raw) if fmt == "html" else raw.strip())


def _html_to_text(raw: str) -> str:
    if re.search(r"<img\b", raw, re.I):
        raise ValueError("题目含图片（<img>），暂不支持导入图片")
    text = re.sub(r"\s+", " ", raw)
    text = re.sub(r"<(script|style)\b.*?</\1\s*>", "", text, flags=re.I)
    text = re.sub(r"<br\s*/?>|</(?:p|div|li|tr|h[1-6])\s*>", "\n", text, flags=re.I)
    text = html.unescape(re.sub(r"<[^>]*>", "", text))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
