"""Stopping the local stack ends the ffmpeg runs in flight at once (``ffmpeg.stop_all``): each
raises ``FfmpegStopped`` (a kind of timeout: unfinished work, worth doing again), and a run started
after the stop is ended too."""

from __future__ import annotations

import threading
import time

import pytest

from functions.media import ffmpeg

# Ten minutes of generated audio encoded in real time: runs until something ends it.
ENDLESS = ["-re", "-f", "lavfi", "-i", "sine=frequency=440:duration=600", "-f", "null", "-"]


@pytest.fixture(autouse=True)
def not_stopping(monkeypatch):
    monkeypatch.setattr(ffmpeg._Running, "stopping", False)


def _wait_for_running(count: int) -> None:
    deadline = time.monotonic() + 10
    while len(ffmpeg._Running.processes) < count:
        assert time.monotonic() < deadline, "ffmpeg did not start"
        time.sleep(0.02)


def test_stop_all_ends_runs_and_streams_in_flight_with_ffmpeg_stopped():
    raised: dict[str, BaseException] = {}

    def run() -> None:
        try:
            ffmpeg.run(ENDLESS, timeout_s=60)
        except BaseException as error:
            raised["run"] = error

    def stream() -> None:
        try:
            with ffmpeg.stream([*ENDLESS[:-3], "-f", "s16le", "-"], timeout_s=60) as pcm:
                while pcm.read(65536):
                    pass
        except BaseException as error:
            raised["stream"] = error

    threads = [threading.Thread(target=run), threading.Thread(target=stream)]
    for thread in threads:
        thread.start()
    _wait_for_running(2)

    assert ffmpeg.stop_all() == 2
    for thread in threads:
        thread.join(timeout=30)  # a run the stop missed would encode for ten minutes

    assert not any(thread.is_alive() for thread in threads)
    assert isinstance(raised["run"], ffmpeg.FfmpegStopped)
    assert isinstance(raised["stream"], ffmpeg.FfmpegStopped)
    assert isinstance(raised["run"], ffmpeg.FfmpegTimeout)  # lanes treat it as transient
    assert not ffmpeg._Running.processes


def test_a_run_started_after_the_stop_is_ended_too():
    ffmpeg.stop_all()
    with pytest.raises(ffmpeg.FfmpegStopped):
        ffmpeg.run(ENDLESS, timeout_s=60)
