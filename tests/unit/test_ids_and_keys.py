import uuid

from functions import ids
from functions.data import keys


def test_prefixed_and_bare_ids_address_the_same_record():
    raw = ids.new_id()
    assert ids.parse("upl", ids.render("upl", raw)) == raw
    assert ids.parse("upl", raw) == raw


def test_an_id_of_another_kind_or_garbage_is_not_an_id():
    raw = str(uuid.uuid4())
    assert ids.parse("upl", f"trk_{raw}") is None
    assert ids.parse("trk", "trk_not-a-uuid") is None
    assert ids.parse("upl", "upl_" + "x" * 36) is None
    assert ids.parse("upl", "") is None


def test_original_keys_round_trip_to_their_upload_id():
    upload_id = ids.new_id()
    assert keys.upload_id_from_key(keys.original(upload_id, "wav")) == upload_id


def test_keys_outside_uploads_or_nested_deeper_name_no_upload():
    assert keys.upload_id_from_key("tracks/abc/renditions/a.m4a") is None
    assert keys.upload_id_from_key("uploads/abc/def/original.wav") is None
    assert keys.upload_id_from_key("uploads//original.wav") is None
