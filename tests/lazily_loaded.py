"""This project's modules a handler imports only when an invocation needs them, declared once for
the two tests that hold them to it: ``tests/unit/test_cold_imports.py`` (a handler's import does
not load them) and ``tests/infrastructure/test_functions.py`` (the function's layers can load them
when the invocation does)."""

# The media and domain code of one processing lane, imported by that lane
# (functions/domain/processing/steps.py).
LANE_MODULES = (
    "functions.media.probe",
    "functions.media.waveform",
    "functions.media.loudness",
    "functions.media.tags",
    "functions.media.artwork",
    "functions.media.embedding",
    "functions.domain.processing.autotag",
    "functions.domain.intake.media_uploads",
)
# The intake and verdict code only a sweep that finds a stuck track needs
# (functions/domain/processing/sweeper.py).
SWEEP_MODULES = (
    "functions.domain.intake.executions",
    "functions.domain.intake.uploads",
    "functions.domain.processing.verdict",
)
