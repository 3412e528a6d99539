"""The data-access helpers domain code drives DynamoDB through (``functions.data.reads`` and
``functions.data.writes``): a missing item or a refused condition is an answer (None, False,
``committed``), any other failure is raised. Against moto, since what is proven is how DynamoDB's
answers are told apart."""

from __future__ import annotations

import pytest
from pynamodb.exceptions import TransactWriteError

from functions.data import reads, writes
from functions.data.models import ArtistModel, EntitlementModel, LaneModel, TrackModel, utcnow


def profile(user_id: str, handle: str) -> ArtistModel:
    return ArtistModel(*ArtistModel.profile_key(user_id), user_id=user_id, handle=handle)


def claim(user_id: str, handle: str) -> ArtistModel:
    return ArtistModel(*ArtistModel.handle_key(handle), user_id=user_id, handle=handle)


def stored(item: ArtistModel) -> ArtistModel | None:
    return reads.get_or_none(ArtistModel, item.pk, item.sk, consistent_read=True)


# --- reads -----------------------------------------------------------------------------------------


def test_get_or_none_returns_the_stored_item_or_none(stack):
    # Given one profile and one hash-key-only item
    profile("ana", "ana").save()
    EntitlementModel("ana", allowed=True).save()

    # When each is read, and a key nobody wrote
    found = reads.get_or_none(ArtistModel, *ArtistModel.profile_key("ana"), consistent_read=True)
    entitlement = reads.get_or_none(EntitlementModel, "ana")
    missing = reads.get_or_none(ArtistModel, *ArtistModel.profile_key("nobody"))

    # Then the stored items come back and the missing one is None
    assert found is not None and found.handle == "ana"
    assert entitlement is not None and entitlement.allowed is True
    assert missing is None


def test_refresh_reads_the_item_again_and_is_false_once_it_is_gone(stack):
    # Given a profile read before someone else changed it
    item = profile("ana", "ana")
    item.save()
    seen = stored(item)
    assert seen is not None
    ArtistModel(*ArtistModel.profile_key("ana")).update(actions=[ArtistModel.display_name.set("Ana B")])

    # When it is refreshed, then refreshed again after it was deleted
    refreshed = reads.refresh(seen, consistent_read=True)
    item.delete()
    refreshed_gone = reads.refresh(seen, consistent_read=True)

    # Then the first refresh saw the change; the second says it is gone and leaves the object as it was
    assert refreshed is True
    assert refreshed_gone is False
    assert seen.display_name == "Ana B"


def test_partition_returns_every_item_under_the_key_and_no_other(stack):
    # Given a track with two lanes, and another track
    now = utcnow()
    for track_id in ("t1", "t2"):
        TrackModel(track_id, TrackModel.TRACK_SK, owner_id="ana", upload_id=f"u-{track_id}", title="x").save()
    for lane in ("transcode", "waveform"):
        LaneModel("t1", LaneModel.sort_key(lane), lane=lane, updated_at=now).save()

    # When the first track's partition is read
    items = list(reads.partition(TrackModel, "t1", consistent_read=True))

    # Then it holds the track and its lanes only
    assert sorted(raw["sk"]["S"] for raw in items) == ["lane#transcode", "lane#waveform", "track"]


# --- single-item writes ----------------------------------------------------------------------------


def test_delete_if_returning_old_answers_with_the_item_as_it_was_deleted(stack):
    # Given a profile changed after it was read
    item = profile("ana", "ana")
    item.save()
    ArtistModel(*ArtistModel.profile_key("ana")).update(actions=[ArtistModel.display_name.set("Ana B")])

    # When the stale object is deleted on a condition that holds
    old = writes.delete_if_returning_old(item, ArtistModel.user_id == "ana")

    # Then the answer is what was stored (not what was read), and it is gone
    assert old is not None and old.display_name == "Ana B"
    assert stored(item) is None


def test_delete_if_returning_old_is_none_when_the_condition_does_not_hold(stack):
    # Given a profile
    item = profile("ana", "ana")
    item.save()

    # When it is deleted on a condition that does not hold, and a missing item on its existence
    refused = writes.delete_if_returning_old(item, ArtistModel.user_id == "bob")
    missing = writes.delete_if_returning_old(profile("nobody", "nobody"), ArtistModel.pk.exists())

    # Then both are None and the profile is still there
    assert refused is None
    assert missing is None
    assert stored(item) is not None


# --- transactions ----------------------------------------------------------------------------------


def test_a_conditional_transaction_whose_conditions_hold_commits(stack):
    # When a profile and its handle claim are written on conditions that hold
    with writes.conditional_transaction() as tx:
        tx.save(claim("ana", "ana"), condition=ArtistModel.pk.does_not_exist())
        tx.save(profile("ana", "ana"), condition=ArtistModel.pk.does_not_exist())

    # Then both are written
    assert tx.committed
    assert tx.reasons == []
    assert stored(claim("ana", "ana")) is not None
    assert stored(profile("ana", "ana")) is not None


def test_a_refused_conditional_transaction_writes_nothing_and_says_which_item_refused(stack):
    # Given a handle claimed by bob
    claim("bob", "taken").save()

    # When ana's transaction adds an update, then a put that is refused, then a delete
    with writes.conditional_transaction() as tx:
        tx.update(profile("ana", "ana"), actions=[ArtistModel.display_name.set("Ana")])
        tx.save(claim("ana", "taken"), condition=ArtistModel.pk.does_not_exist())
        tx.delete(claim("ana", "old"))

    # Then nothing is written, and the reasons are in DynamoDB's order (deletes, puts, updates),
    # not the order the items were added in
    assert not tx.committed
    assert tx.reasons == [None, writes.CONDITION_FAILED, None]
    assert [tx.refused_at(index) for index in range(4)] == [False, True, False, False]
    assert stored(profile("ana", "ana")) is None
    assert stored(claim("bob", "taken")).user_id == "bob"


def test_a_refusal_the_caller_does_not_expect_is_raised_as_it_came(stack):
    # Given a refused transaction
    claim("bob", "taken").save()
    with writes.conditional_transaction() as tx:
        tx.save(claim("ana", "taken"), condition=ArtistModel.pk.does_not_exist())
    assert not tx.committed

    # When its caller raises it after all, then the error is DynamoDB's cancellation
    with pytest.raises(TransactWriteError) as raised:
        tx.raise_refusal()
    assert writes.cancellation_reasons(raised.value) == [writes.CONDITION_FAILED]


def test_a_conditional_transaction_raises_a_failure_that_is_not_a_refusal(stack):
    # When a transaction names one item twice (DynamoDB refuses the request itself)
    with pytest.raises(TransactWriteError), writes.conditional_transaction() as tx:
        tx.save(profile("ana", "ana"))
        tx.delete(profile("ana", "ana"))

    # Then the failure is raised, and nothing was written
    assert stored(profile("ana", "ana")) is None


def test_a_conditional_transaction_commits_nothing_when_its_body_raises(stack):
    # When the block building the transaction raises
    with pytest.raises(RuntimeError), writes.conditional_transaction() as tx:
        tx.save(profile("ana", "ana"))
        raise RuntimeError("stopped")

    # Then the error goes on and nothing was written
    assert stored(profile("ana", "ana")) is None
