"""One processing step in a fresh process, reporting its peak memory (see benchmarks/run.py).

Peak RSS of the Python process comes from getrusage. ffmpeg's peak is read from /proc (VmHWM,
the high-water mark since exec) by polling this process's children: RUSAGE_CHILDREN would report
the forked Python image before it became ffmpeg. In Lambda both count against one memory limit, so
the step's peak is reported as their sum (an upper bound: the two peaks need not coincide).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from pathlib import Path


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
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
                    self.peak_kib = max(self.peak_kib, int(fields["VmHWM"].split()[0]))
            self.stopped.wait(0.05)


def main() -> None:
    step, payload, out = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    from functions.data.models import TrackModel, bind

    bind()
    TrackModel("bench-track", TrackModel.TRACK_SK, owner_id="bench", upload_id="bench", title="bench").save()
    from functions.workflow import steps

    watcher = ChildPeakWatcher()
    watcher.start()
    start = time.perf_counter()
    result = steps.run(step, payload)
    elapsed = time.perf_counter() - start
    watcher.stopped.set()
    watcher.join()
    python_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    ffmpeg_mb = watcher.peak_kib / 1024
    out.write_text(
        json.dumps(
            {
                "step": step,
                "result": result,
                "seconds": elapsed,
                "python_rss_mb": python_mb,
                "ffmpeg_rss_mb": ffmpeg_mb,
                "step_peak_mb": python_mb + ffmpeg_mb,
            }
        )
    )


if __name__ == "__main__":
    main()
