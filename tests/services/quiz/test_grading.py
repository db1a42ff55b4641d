"""Grading in the labels the worker saw equals grading in the original option keys."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.quiz import grading


@st.composite
def graded_cases(draw):
    n_parts = draw(st.integers(1, 3))
    order, keys, response = [], [], []
    for _ in range(n_parts):
        n = draw(st.integers(2, 6))
        original = "ABCDEF"[:n]
        shown = draw(st.permutations(list(original)))
        order.append(list(shown))
        keys.append("".join(sorted(draw(st.sets(st.sampled_from(original), min_size=1)))))
        picked = draw(st.sets(st.sampled_from("ABCDEF"[:n]), min_size=1))
        response.append("".join(sorted(picked)))
    certainty = draw(st.sampled_from([None, 1, 2, 3]))
    return response, order, keys, certainty, draw(st.booleans())


@given(graded_cases())
def test_grading_by_displayed_labels_equals_grading_by_keys(case):
    response, order, keys, certainty, cbm = case
    expected = grading.grade_item(response, order, keys, certainty, cbm)
    got = grading.grade_labels(response, grading.relabel(keys, order), certainty, cbm)
    assert got == expected


def test_an_unanswered_item_is_not_graded():
    assert grading.grade_labels([], ["A"], None, False) is None
    assert grading.grade_labels(None, ["A"], None, False) is None
