"""The local API answers browsers as the deployed HTTP API's CORS configuration does.

On AWS, API Gateway answers preflights itself and adds the CORS headers to every response
(``stacks/constructs/api.py``); the FastAPI app never sees OPTIONS. Locally, Starlette's middleware
plays that part, configured from the same declaration (``functions/cors.py``) and origins.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from functions import cors


def with_cors(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=list(cors.API_ALLOWED_METHODS),
        allow_headers=list(cors.API_ALLOWED_HEADERS),
        expose_headers=list(cors.API_EXPOSED_HEADERS),
        max_age=cors.API_MAX_AGE_S,
    )
