"""The issuer's signing keys (JWKS) for ``functions.api.auth``, in a module of their own so that
PyJWT and cryptography load with the first token to verify, not with the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import jwt


class SigningKeys(jwt.PyJWKClient):
    """PyJWT's JWKS client (key selection by ``kid``, caching, refetch on an unknown key), able to
    read a ``file://`` JWKS too: the local stack publishes its keys as a file, so it verifies tokens
    through exactly this code. PyJWT itself refuses non-HTTP schemes, because a URL taken from a
    token could otherwise read local files; this one comes only from settings."""

    def __init__(self, jwks_url: str, *, lifespan: float) -> None:
        parsed = urlparse(jwks_url)
        self._file = Path(url2pathname(parsed.path)) if parsed.scheme == "file" else None
        super().__init__(
            "https://jwks.invalid/" if self._file else jwks_url,
            cache_keys=True,
            lifespan=lifespan,
            timeout=5,
        )

    def fetch_data(self) -> Any:
        if self._file is None:
            return super().fetch_data()
        try:
            data = json.loads(self._file.read_text())
        except (OSError, ValueError) as error:
            raise jwt.PyJWKClientConnectionError(f"cannot read the JWKS file {self._file}: {error}") from error
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(data)
        return data
