"""The autotag classifier's vote (functions.domain.processing.autotag.suggest), without AWS."""

from __future__ import annotations

import pytest

from functions.domain.processing import autotag
from functions.domain.processing.autotag import Example, Suggestion, suggest


def example(track_id: str, vector: list[float], *tags: str) -> Example:
    return Example(track_id, vector, list(tags))


def test_the_nearest_examples_tags_win_and_a_far_one_barely_votes():
    found = suggest(
        [1.0, 0.0, 0.0],
        [
            example("a", [0.99, 0.1, 0.0], "ambient", "drone"),
            example("b", [0.98, 0.0, 0.2], "ambient"),
            example("c", [0.6, 0.8, 0.0], "noise"),
        ],
    )
    assert [s.tag for s in found] == ["ambient", "drone"]
    assert found[0].score > 0.99
    assert 0.45 < found[1].score < 0.55  # one of the two near neighbours


def test_only_examples_that_sound_alike_at_all_vote():
    assert suggest([1.0, 0.0], [example("a", [-1.0, 0.0], "opposite"), example("b", [0.0, 1.0], "unrelated")]) == []


def test_a_tag_below_the_threshold_is_not_suggested_and_at_most_five_are():
    near = [example(f"n{i}", [1.0, 0.01 * i], f"tag{i}") for i in range(8)]
    found = suggest([1.0, 0.0], near)
    # Eight near-equal voters give each tag about 1/8 of the vote: below the threshold.
    assert found == []
    shared = [example(f"s{i}", [1.0, 0.01 * i], *(f"t{j}" for j in range(7))) for i in range(3)]
    found = suggest([1.0, 0.0], shared)
    assert len(found) == autotag.MAX_SUGGESTIONS
    assert [s.tag for s in found] == [f"t{j}" for j in range(5)]  # equal scores: in tag order


def test_only_the_nearest_neighbours_vote(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(autotag, "NEIGHBOURS", 2)
    examples = [example("a", [1.0, 0.0], "x"), example("b", [1.0, 0.05], "x"), example("c", [1.0, 0.1], "y")]
    assert [s.tag for s in suggest([1.0, 0.0], examples)] == ["x"]


def test_vectors_of_another_embedding_version_are_ignored():
    assert suggest([1.0, 0.0], [example("a", [1.0, 0.0, 0.0], "x")]) == []
    assert suggest([1.0, 0.0], []) == []


def test_suggestions_serialize_for_processing_status():
    assert Suggestion("ambient", 0.75).to_json() == {"tag": "ambient", "score": 0.75}
