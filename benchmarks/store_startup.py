"""Start-up of the local stack with a kept store (local/persistence.py) against an empty one.

Starts the stack as `make run` does on a new data directory and times it to a healthy /health; fills
it with objects (PUT through moto, as uploads arrive) and table items; stops it with SIGINT (the last
table snapshot is taken then) and times that; starts it again on the same directory and times that.
Objects are restored without reading their bytes, so the second start should be within a few
seconds of the first whatever the store holds.

    .venv/bin/python -m benchmarks.store_startup                 # 2 GB in 100 MB objects, 10,000 items
    .venv/bin/python -m benchmarks.store_startup --megabytes 500 --items 2000
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import StackProcess
from local.provision import client


def _start(log: Path, data_dir: Path) -> tuple[StackProcess, float]:
    started = time.perf_counter()
    stack = StackProcess(log, data_dir=data_dir)
    return stack, time.perf_counter() - started


def _stop(stack: StackProcess) -> float:
    started = time.perf_counter()
    stack.stop()
    return time.perf_counter() - started


def _fill(moto_endpoint: str, *, megabytes: int, object_mb: int, items: int) -> None:
    s3 = client("s3", moto_endpoint)
    bucket = s3.list_buckets()["Buckets"][0]["Name"]
    block = os.urandom(object_mb * 1024 * 1024)
    for n in range(max(1, megabytes // object_mb)):
        # Distinct bytes per object (moto stores each one on its own anyway).
        s3.put_object(Bucket=bucket, Key=f"tracks/bench-{n}/original.wav", Body=n.to_bytes(8, "big") + block[8:])
    dynamodb = client("dynamodb", moto_endpoint)
    table = next(name for name in dynamodb.list_tables()["TableNames"] if "track" in name.lower())
    for start in range(0, items, 25):
        batch = [
            {"PutRequest": {"Item": {"pk": {"S": f"trk_bench_{n}"}, "sk": {"S": "TRACK"}, "title": {"S": "x" * 200}}}}
            for n in range(start, min(items, start + 25))
        ]
        dynamodb.batch_write_item(RequestItems={table: batch})


def _restored_line(log: Path) -> str:
    match = re.search(r"data:\s+(.*)", log.read_text(errors="replace"))
    return match.group(1) if match else "?"


def measure(*, megabytes: int, object_mb: int, items: int) -> str:
    """The report's lines: starts, fill and stops, on a store of its own in a temporary directory."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(name, value)  # moto's; this talks to nothing else
    with tempfile.TemporaryDirectory(prefix="tracklane-store-bench-") as scratch:
        root = Path(scratch)
        data_dir = root / "data"
        stack, empty_start_s = _start(root / "first.log", data_dir)
        fill_started = time.perf_counter()
        _fill(f"http://127.0.0.1:{stack.moto_port}", megabytes=megabytes, object_mb=object_mb, items=items)
        fill_s = time.perf_counter() - fill_started
        stop_s = _stop(stack)
        stored_mb = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file()) / 1e6
        stack, kept_start_s = _start(root / "second.log", data_dir)
        again_stop_s = _stop(stack)
        return (
            f"store: {stored_mb:.0f} MB on disk ({megabytes} MB of objects, {items} items)\n"
            f"  start, empty store:        {empty_start_s:6.2f} s\n"
            f"  fill through moto:         {fill_s:6.2f} s\n"
            f"  stop (last snapshot):      {stop_s:6.2f} s\n"
            f"  start, kept store:         {kept_start_s:6.2f} s  ({_restored_line(root / 'second.log')})\n"
            f"  stop, nothing changed:     {again_stop_s:6.2f} s\n"
            f"  kept / empty start:        {kept_start_s / empty_start_s:6.2f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=2048, help="object bytes to store (default 2048)")
    parser.add_argument("--object-mb", type=int, default=100, help="size of each object (default 100)")
    parser.add_argument("--items", type=int, default=10_000, help="table items to store (default 10,000)")
    args = parser.parse_args()
    print(measure(megabytes=args.megabytes, object_mb=args.object_mb, items=args.items))
    return 0


if __name__ == "__main__":
    sys.exit(main())
