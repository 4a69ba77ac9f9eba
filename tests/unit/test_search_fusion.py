"""RRF fusion normalised to 0..1, query sanitising and attribute filters (retrieval/search.py, filters.py)."""

from __future__ import annotations

import pytest

from assistd.retrieval import filters
from assistd.retrieval.search import RRF_K, fts5_match, query_terms, rrf_fuse

A, B, C = ("vs", "a", 0), ("vs", "b", 0), ("vs", "c", 0)


def test_first_everywhere_scores_one_and_scores_stay_in_range() -> None:
    fused = rrf_fuse([[A, B, C], [A, C, B]])
    assert fused[A] == pytest.approx(1.0)
    assert fused[B] == pytest.approx(((1 / (RRF_K + 2)) + 1 / (RRF_K + 3)) / (2 / (RRF_K + 1)))
    assert all(0.0 < s <= 1.0 for s in fused.values())
    assert fused[A] > fused[B] == pytest.approx(fused[C])


def test_one_list_only_scores_half_with_two_lists() -> None:
    fused = rrf_fuse([[A], []])
    assert fused[A] == pytest.approx(0.5)


def test_weights_and_many_lists() -> None:
    fused = rrf_fuse([[A], [B]], weights=[3.0, 1.0])
    assert fused[A] == pytest.approx(0.75) and fused[B] == pytest.approx(0.25)
    assert rrf_fuse([]) == {}
    assert rrf_fuse([[A]] * 6)[A] == pytest.approx(1.0)


def test_query_terms_are_safe_for_fts5() -> None:
    assert query_terms('What "is" AND/OR NEAR(x) the_cat\'s * -purr?') == [
        "what",
        "is",
        "and",
        "or",
        "near",
        "x",
        "the",
        "cat",
        "s",
        "purr",
    ]
    assert query_terms("  ?!  ") == []
    assert fts5_match("cats?", ["vs_A"]) == 'text : ("cats") AND vector_store_id : ("vs_A")'


def test_filters() -> None:
    attrs = {"topic": "cats", "year": 2020, "public": True}
    assert filters.matches({"key": "year", "type": "gt", "value": 2019}, attrs)
    assert not filters.matches({"key": "year", "type": "gt", "value": "2019"}, attrs)  # no cross-kind comparison
    assert not filters.matches({"key": "public", "type": "eq", "value": 1}, attrs)  # a bool is not a number
    assert filters.matches({"key": "nope", "type": "ne", "value": 1}, attrs)
    assert filters.matches(
        {"type": "or", "filters": [{"key": "topic", "type": "in", "value": ["dogs", "cats"]}]}, attrs
    )
    filters.check({"type": "and", "filters": [{"key": "a", "type": "nin", "value": [1, "x"]}]})
    with pytest.raises(ValueError):
        filters.check({"key": "a", "type": "in", "value": 1})
