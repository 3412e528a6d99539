"""The local counterpart of the scheduled sweeper rule: calls the sweeper Lambda handler on an
interval, so a track stuck in ``processing`` is settled locally as it would be in AWS."""

from __future__ import annotations

import threading

from functions.domain.processing import sweeper as processing_sweeper
from functions.handlers import sweeper
from functions.observability import logger
from local.lambda_context import LocalLambdaContext


class SweeperSchedule(threading.Thread):
    def __init__(self, interval_s: float, *, sweep_at_start: bool = False) -> None:
        super().__init__(name="sweeper-schedule", daemon=True)
        self._interval_s = interval_s
        self._sweep_at_start = sweep_at_start
        self._stop_requested = threading.Event()

    def stop(self) -> None:
        self._stop_requested.set()

    def run(self) -> None:
        if self._sweep_at_start:
            self._resume()
        while not self._stop_requested.wait(self._interval_s):
            try:
                sweeper.handler({"source": "local.schedule"}, LocalLambdaContext("tracklane-sweeper"))
            except Exception:
                logger.exception("sweeper schedule: sweep failed")

    def _resume(self) -> None:
        """After a restart on a kept store: no execution survived it, so every track still
        processing gets its workflow started again now (the sweeper's "never started" path, same
        execution name), not only those processing longer than the sweeper's grace period."""
        try:
            report = processing_sweeper.sweep(older_than_s=0)
        except Exception:
            logger.exception("sweeper schedule: resuming workflows failed")
            return
        if report.restarted:
            logger.info("workflows resumed after a restart", extra=report.to_json())
