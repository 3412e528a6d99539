"""Routes a client polls while its upload is processed, declared once.

On AWS each gets an API Gateway route of its own with its own throttle (``stacks/constructs/api.py``,
cdk.json ``progressThrottleRate``/``progressThrottleBurst``): an HTTP API throttles each route
separately, so uploaders watching progress never spend the budget of the catch-all route that
creates intents and finalizes them (docs/capacity.md). The app serves them like any other route;
a test checks each is one of its routes.
"""

from __future__ import annotations

# (method, path in the app's and API Gateway's shared template syntax)
POLLED_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/v1/uploads/{upload_id}/progress"),
    ("GET", "/v1/tracks/{track_id}/processing-status"),
)
