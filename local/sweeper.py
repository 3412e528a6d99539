"""The local counterpart of the scheduled sweeper rule: calls the sweeper Lambda handler on an
interval, so a track stuck in ``processing`` is settled locally as it would be in AWS."""

from __future__ import annotations

import threading

from functions.handlers import sweeper
from functions.observability import logger
from local.lambda_context import LocalLambdaContext


class SweeperSchedule(threading.Thread):
    def __init__(self, interval_s: float) -> None:
        super().__init__(name="sweeper-schedule", daemon=True)
        self._interval_s = interval_s
        self._stop_requested = threading.Event()

    def stop(self) -> None:
        self._stop_requested.set()

    def run(self) -> None:
        while not self._stop_requested.wait(self._interval_s):
            try:
                sweeper.handler({"source": "local.schedule"}, LocalLambdaContext("tracklane-sweeper"))
            except Exception:
                logger.exception("sweeper schedule: sweep failed")
