"""Local dev tokens: RS256 JWTs signed with a key pair the local stack generates for itself.

The local API verifies them with the deployed code path (``functions.api.auth.IssuerAuthenticator``
reading a JWKS): only the issuer differs. The private key lives in the checkout's ``.tracklane/``
(``TRACKLANE_DEV_KEY_FILE``, never committed), the public half is published beside it as a
``file://`` JWKS the local stack points ``TRACKLANE_JWKS_URL`` at.

This module is outside ``functions/`` on purpose: the Lambda package does not contain it, and the
deployed API trusts only the issuer its stack configures.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from functions.api.auth import subject_problem

ISSUER = "tracklane-local"
AUDIENCE = "tracklane-local"


@dataclass(frozen=True)
class DevKeys:
    """The local issuer's signing key (``private_key_file``) and its public JWKS (``jwks_file``)."""

    private_key_file: Path

    @property
    def jwks_file(self) -> Path:
        return self.private_key_file.with_name(self.private_key_file.stem + ".jwks.json")

    @property
    def jwks_url(self) -> str:
        return self.jwks_file.resolve().as_uri()

    def ensure(self) -> DevKeys:
        """Creates the key pair once (owner-readable only) and (re)writes the JWKS for it."""
        if not self.private_key_file.exists():
            self.private_key_file.parent.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            partial = self.private_key_file.with_name(f".{self.private_key_file.name}.{os.getpid()}")
            partial.write_bytes(pem)
            partial.chmod(0o600)
            try:
                # A second stack starting at the same moment keeps the first one's key.
                os.link(partial, self.private_key_file)
            except FileExistsError:
                pass
            finally:
                partial.unlink(missing_ok=True)
        key = self._key()
        public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwks = json.dumps({"keys": [{**public, "kid": _key_id(key), "use": "sig", "alg": "RS256"}]}, indent=2) + "\n"
        if not self.jwks_file.exists() or self.jwks_file.read_text() != jwks:
            # Renamed into place: an API reading the JWKS meanwhile never sees half a file.
            partial = self.jwks_file.with_name(f".{self.jwks_file.name}.{os.getpid()}")
            partial.write_text(jwks)
            partial.replace(self.jwks_file)
        return self

    def _key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.private_key_file.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{self.private_key_file} does not hold an RSA private key")
        return key

    @property
    def key_id(self) -> str:
        return _key_id(self._key())

    def environment(self) -> dict[str, str]:
        """What the functions read to trust this issuer (``functions.settings``)."""
        return {
            "TRACKLANE_JWT_ISSUER": ISSUER,
            "TRACKLANE_JWT_AUDIENCES": json.dumps([AUDIENCE]),
            "TRACKLANE_JWKS_URL": self.jwks_url,
        }


def _key_id(key: rsa.RSAPrivateKey) -> str:
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(public).hexdigest()[:16]


def mint(user: str, keys: DevKeys, *, ttl_s: int = 12 * 3600) -> str:
    """A bearer token for ``user``. Refuses a user id no API would accept (ValueError says why), so
    a typo in ``tracklane token --user`` fails here instead of as a 401 later."""
    problem = subject_problem(user)
    if problem is not None:
        raise ValueError(f"the user id {problem}")
    now = int(time.time())
    claims = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_s}
    key = keys.ensure()._key()
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": _key_id(key)})
