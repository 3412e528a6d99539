"""A track's renditions: one attribute per format (each written by its own workflow task), read
over the three-at-once map that tracks processed before each rendition had its own task carry."""

from __future__ import annotations

from functions.data.models import TrackModel

AAC = {"key": "tracks/t/renditions/aac.m4a", "contentType": "audio/mp4"}
MP3 = {"key": "tracks/t/renditions/mp3.mp3", "contentType": "audio/mpeg"}
OLD_AAC = {"key": "tracks/t/old/aac.m4a", "contentType": "audio/mp4"}


def test_per_format_attributes_are_read_by_format():
    track = TrackModel("t", TrackModel.TRACK_SK, rendition_aac=AAC, rendition_mp3=MP3)
    assert track.rendition_map() == {"aac": AAC, "mp3": MP3}


def test_a_track_processed_before_reads_its_three_at_once_map():
    track = TrackModel("t", TrackModel.TRACK_SK, renditions={"aac": OLD_AAC, "mp3": MP3})
    assert track.rendition_map() == {"aac": OLD_AAC, "mp3": MP3}


def test_a_per_format_attribute_wins_over_the_old_map():
    track = TrackModel("t", TrackModel.TRACK_SK, renditions={"aac": OLD_AAC}, rendition_aac=AAC)
    assert track.rendition_map() == {"aac": AAC}


def test_no_rendition_yet_is_an_empty_map():
    assert TrackModel("t", TrackModel.TRACK_SK).rendition_map() == {}
