"""Pure grading rules shared by practice and attempts."""

from __future__ import annotations

import re

from core.errors import ValidationFailed
from services.quiz.bank import normalize_choice

# Moodle certainty-based marking: certainty -> (marks if right, marks if wrong)
CBM = {1: (1.0, 0.0), 2: (2.0, -2.0), 3: (3.0, -6.0)}
_PART_SEPARATORS = re.compile(r"[/|;；\s]+")


def parse_choice(choice: str | list[str], options: list[list[str]]) -> list[str]:
    """Normalise a reply ("ab", "A,B", ["A", "BC"] for scenario parts) per part, checking
    every letter is an option of its part."""
    if type(choice) is str and len(choice) == 1 and len(options) == 1 and choice in options[0]:
        return [choice]  # the common reply: one valid capital letter
    if isinstance(choice, str):
        raw = _PART_SEPARATORS.split(choice.strip()) if len(options) > 1 else [choice]
    else:
        raw = list(choice)
    parts = [normalize_choice(x) for x in raw if x is not None]
    if len(parts) != len(options) or any(not p for p in parts):
        raise ValidationFailed("请为每一小题选择答案", fields={"choice": f"需要 {len(options)} 个答案"})
    for p, keys in zip(parts, options, strict=True):
        bad = [ch for ch in p if ch not in keys]
        if bad:
            raise ValidationFailed(f"选项 {''.join(bad)} 不存在", fields={"choice": "选项无效"})
    return parts


def score_parts(parts: list[str], answers: list[str]) -> tuple[float, bool]:
    """(fraction of parts right, all right)."""
    right = sum(1 for p, a in zip(parts, answers, strict=True) if p == a)
    return right / len(answers), right == len(answers)


def grade_item(
    response: list[str] | None,
    order: list[list[str]],
    keys: list[str],
    certainty: int | None,
    certainty_marking: bool,
) -> tuple[float, bool, float] | None:
    """Grade one attempt item: (fraction right, all right, marks), or None if unanswered.

    ``response`` holds the displayed labels per part; ``order`` maps them back to the
    original option keys the answer ``keys`` use."""
    if not response:
        return None
    picked = [
        "".join(sorted(o[ord(ch) - 65] for ch in resp)) for resp, o in zip(response, order, strict=True)
    ]
    frac, ok = score_parts(picked, keys)
    if certainty_marking:
        right, wrong = CBM[certainty or 1]
        return frac, ok, right if ok else wrong
    return frac, ok, frac * len(keys)


def grade_labels(
    response: list[str] | None, correct: list[str], certainty: int | None, certainty_marking: bool
) -> tuple[float, bool, float] | None:
    """:func:`grade_item` in the labels the worker saw: ``correct`` is
    ``relabel(keys, order)``; relabelling is one-to-one per part and both sides are
    sorted, so a part is right exactly when the labels are equal."""
    if not response:
        return None
    right = sum(1 for p, c in zip(response, correct, strict=True) if p == c)
    frac, ok = right / len(correct), right == len(correct)
    if certainty_marking:
        marks_right, marks_wrong = CBM[certainty or 1]
        return frac, ok, marks_right if ok else marks_wrong
    return frac, ok, frac * len(correct)  # the same float grade_item computes


def max_marks(keys: list[str], certainty_marking: bool) -> float:
    return 3.0 if certainty_marking else float(len(keys))


def relabel(keys: list[str], order: list[list[str]]) -> list[str]:
    """Correct answers in the labels the worker saw (per part)."""
    return ["".join(sorted(chr(65 + o.index(k)) for k in key)) for key, o in zip(keys, order, strict=True)]
