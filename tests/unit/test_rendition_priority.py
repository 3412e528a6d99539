"""Where renditions share cores, the CPU serves them shortest first (the track is playable soonest)
and longest first (the ladder ends soonest), and all of them before the optional lanes."""

from __future__ import annotations

from functions.media import ffmpeg
from functions.media.transcode import RENDITIONS


def test_every_rendition_runs_ahead_of_the_optional_lanes():
    assert all(spec.shared_core_niceness < ffmpeg.BACKGROUND_NICENESS for spec in RENDITIONS)


def test_mp3_and_opus_start_at_normal_priority_and_aac_takes_the_core_mp3_frees():
    niceness = {spec.format: spec.shared_core_niceness for spec in RENDITIONS}
    assert niceness["mp3"] == niceness["opus"] == 0 < niceness["aac"]
