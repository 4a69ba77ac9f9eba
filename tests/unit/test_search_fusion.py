"""Score fusion and the RRF it replaced (0..1), query sanitising, attribute filters (search.py, filters.py)."""

from __future__ import annotations

import pytest

from assistd.retrieval import filters
from assistd.retrieval.search import RRF_K, fts5_match, fuse, leads, minmax, query_terms, rrf_fuse

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


def test_fusion_weighs_scores_not_ranks() -> None:
    """A keyword #3 far behind its #1 with a vector #1 barely ahead of the rest: RRF ranks it second (its
    ranks are those of the keyword #1 swapped), score fusion ranks it behind a chunk close to the top in both."""
    d = ("vs", "d", 0)
    keyword = [(A, 10.0), (C, 2.0), (B, 1.0)]
    vector = [(B, 0.80), (C, 0.795), (A, 0.79), (d, 0.10)]
    assert [key for key, _ in fuse([keyword, vector])] == [A, C, B, d]
    old = rrf_fuse([[key for key, _ in keyword], [key for key, _ in vector]])
    assert old[B] == pytest.approx(old[A]) and old[B] > old[C]  # what RRF did
    fused = dict(fuse([keyword, vector]))
    assert fused[A] == pytest.approx((1.0 + 0.69 / 0.7) / 2) and fused[B] == pytest.approx(0.5)
    assert fused[d] == 0.0


def test_first_everywhere_scores_one_and_one_list_counts_zero_elsewhere() -> None:
    assert dict(fuse([[(A, 3.0), (B, 1.0)], [(A, 0.9), (B, 0.2)]])) == {A: 1.0, B: 0.0}
    assert dict(fuse([[(A, 3.0)], []])) == {A: 0.5}
    assert dict(fuse([[(A, 3.0)]] * 4)) == {A: 1.0}
    assert fuse([]) == [] and fuse([[], []]) == []
    assert minmax([(A, 2.0), (B, 2.0)]) == {A: 1.0, B: 1.0}
    assert minmax([(A, 3.0), (B, 2.0), (C, 1.0)]) == {A: 1.0, B: 0.5, C: 0.0}


def test_equal_fused_scores_go_to_the_larger_lead_whatever_the_keys() -> None:
    """Keyword #1 far ahead of its #2 vs vector #1 barely ahead of its #2: both 0.5, the keyword's wins."""
    keyword = [(C, 12.0), (B, 3.0), (("vs", "d", 0), 2.0)]
    vector = [(A, 0.61), (("vs", "e", 0), 0.60), (("vs", "f", 0), 0.20)]
    fused = fuse([keyword, vector])
    assert [key for key, _ in fused[:2]] == [C, A]
    assert fused[0][1] == fused[1][1] == pytest.approx(0.5)
    # The other way round, the vector's #1 wins; a list of one has the largest lead there is.
    assert fuse([[(C, 12.0), (B, 11.9)], [(A, 0.9), (("vs", "d", 0), 0.1)]])[0][0] == A
    assert fuse([[(C, 5.0)], [(A, 0.9), (("vs", "d", 0), 0.5), (B, 0.1)]])[0][0] == C
    # Close to the top in both lists beats first in one; ties left after the leads go by key.
    assert fuse([[(B, 1.0), (A, 0.9), (C, 0.0)], [(C, 1.0), (A, 0.9), (B, 0.0)]])[0][0] == A
    assert [k for k, _ in fuse([[(C, 1.0)], [(B, 1.0)]])] == [B, C]


def test_leads() -> None:
    assert leads([]) == {}
    assert leads([(A, 3.0), (B, 2.0), (C, 0.0)]) == {A: pytest.approx(1 / 3), B: pytest.approx(2 / 3), C: 0.0}
    assert leads([(A, 1.0), (B, 1.0)]) == {A: 1.0, B: 0.0}


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
