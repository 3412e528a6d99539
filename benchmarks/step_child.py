"""One processing step in a fresh process, reporting its peak memory (see benchmarks/run.py).

Peaks are VmHWM from /proc (the RSS high-water mark of the image since exec): for this process at
the end, for its ffmpeg children by polling while they run. getrusage's ru_maxrss would not do:
Linux carries it across fork and exec, so it reports the parent's peak (the benchmark process,
which holds a 500 MB WAV in moto) or the forked Python image before it became ffmpeg. In Lambda
both count against one memory limit, so the step's peak is reported as their sum (an upper bound:
the two peaks need not coincide). Its CPU-seconds are user + system time of the process and of
the ffmpeg children it waited for, across the step.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from pathlib import Path


def _vm_hwm_kib(status: str) -> int:
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) if "VmHWM" in fields else 0


class ChildPeakWatcher(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        me = str(os.getpid())
        while not self.stopped.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                if f"\nPPid:\t{me}\n" in status:
                    self.peak_kib = max(self.peak_kib, _vm_hwm_kib(status))
            self.stopped.wait(0.05)


def _cpu_s() -> float:
    """User + system CPU of this process and of the children it waited for (ffmpeg)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def main() -> None:
    step, payload, out = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    from functions.data.models import TrackModel, bind

    bind()
    TrackModel("bench-track", TrackModel.TRACK_SK, owner_id="bench", upload_id="bench", title="bench").save()
    from functions.domain.processing import steps

    watcher = ChildPeakWatcher()
    watcher.start()
    start, cpu_before = time.perf_counter(), _cpu_s()
    result = steps.run(step, payload)
    elapsed, cpu = time.perf_counter() - start, _cpu_s() - cpu_before
    watcher.stopped.set()
    watcher.join()
    python_mb = _vm_hwm_kib(Path("/proc/self/status").read_text()) / 1024
    ffmpeg_mb = watcher.peak_kib / 1024
    out.write_text(
        json.dumps(
            {
                "step": step,
                "result": result,
                "seconds": elapsed,
                "cpu_s": cpu,
                "python_rss_mb": python_mb,
                "ffmpeg_rss_mb": ffmpeg_mb,
                "step_peak_mb": python_mb + ffmpeg_mb,
            }
        )
    )


if __name__ == "__main__":
    main()
