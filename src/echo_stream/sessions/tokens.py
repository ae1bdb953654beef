"""The two credentials of a session stream: the workflow's JWT and the viewer's stream token.

`n8nToken` is verified with PyJWT against ONE algorithm fixed by `JWT_ALGORITHM` (never the
token's own `alg` header, so `none` and HS/RS confusion are refused), `exp` required, `aud`/`iss`
checked when configured, with a small leeway. The stream token is 256 random bits, handed out
once in `streamUrl` and stored only as its SHA-256.

`python -m echo_stream.sessions.tokens` (or `echo-stream-token`) prints a test JWT signed with
`JWT_SECRET`, like the original's `generate_token.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any

from echo_stream.errors import Unauthorized
from echo_stream.settings import Settings

_HMAC = ("HS256", "HS384", "HS512")


@dataclass(frozen=True, slots=True)
class JwtVerifier:
    """Checks `n8nToken`s the way the settings pin it."""

    algorithm: str
    key: str
    audience: str = ""
    issuer: str = ""
    leeway: float = 30.0
    resume_url_claim: str = "resumeUrl"

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier | None:
        """The verifier, or None when no key is configured (session streams are off).

        Raises `ValueError` for an HMAC secret shorter than 32 bytes (a configuration error).
        """
        symmetric = settings.jwt_algorithm in _HMAC
        secret = settings.jwt_secret if symmetric else settings.jwt_public_key
        if secret is None or not secret.get_secret_value().strip():
            return None
        if symmetric and len(secret.get_secret_value().encode()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 bytes for HMAC (RFC 7518 3.2)")
        return cls(
            algorithm=settings.jwt_algorithm,
            key=secret.get_secret_value(),
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            resume_url_claim=settings.jwt_resume_url_claim,
        )

    def verify(self, token: str | None) -> dict[str, Any]:
        """The token's claims; raises `Unauthorized` for a missing, bad or expired token."""
        if not token:
            raise Unauthorized("Missing n8nToken", code="invalid_token")
        required = ["exp"] + (["aud"] if self.audience else []) + (["iss"] if self.issuer else [])
        import jwt  # here, not at import: PyJWT and cryptography cost ~9 MB a worker unused

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                audience=self.audience or None,
                issuer=self.issuer or None,
                leeway=self.leeway,
                options={"require": required, "verify_aud": bool(self.audience)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("n8nToken has expired", code="invalid_token") from None
        except jwt.PyJWTError as exc:
            # PyJWT's messages name the failed check, never the key.
            raise Unauthorized(f"n8nToken rejected: {exc}", code="invalid_token") from None
        return claims

    def resume_url_of(self, claims: dict[str, Any]) -> str | None:
        """The resume URL the token is bound to, if it carries one."""
        value = claims.get(self.resume_url_claim) if self.resume_url_claim else None
        return value if isinstance(value, str) else None


def new_stream_token() -> str:
    """A fresh viewer token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the store keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def hashes_match(presented_hash: str, token_hash: str) -> bool:
    """Compare a presented token's hash with a stored one in constant time."""
    return hmac.compare_digest(presented_hash, token_hash)


def make_test_token(settings: Settings, *, lifetime: float, claims: dict[str, Any]) -> str:
    """A JWT signed with `JWT_SECRET` for development (HS* algorithms only)."""
    if settings.jwt_algorithm not in _HMAC or settings.jwt_secret is None:
        raise ValueError("a test token needs JWT_SECRET and an HS* JWT_ALGORITHM")
    now = int(time.time())
    payload: dict[str, Any] = {"iat": now, "exp": now + int(lifetime), **claims}
    if settings.jwt_audience:
        payload.setdefault("aud", settings.jwt_audience)
    if settings.jwt_issuer:
        payload.setdefault("iss", settings.jwt_issuer)
    secret = settings.jwt_secret.get_secret_value()
    import jwt

    return jwt.encode(payload, secret, algorithm=settings.jwt_algorithm)


def main(argv: list[str] | None = None) -> int:
    """Print a test `n8nToken` signed with the configured JWT_SECRET."""
    parser = argparse.ArgumentParser(prog="echo-stream-token", description=main.__doc__)
    parser.add_argument("--lifetime", type=float, default=300, help="seconds until exp (300)")
    parser.add_argument("--resume-url", help="bind the token to this resumeUrl")
    parser.add_argument("--sub", help="subject claim, e.g. the user id")
    args = parser.parse_args(argv)
    claims: dict[str, Any] = {}
    if args.sub:
        claims["sub"] = args.sub
    settings = Settings()
    if args.resume_url:
        claims[settings.jwt_resume_url_claim] = args.resume_url
    try:
        print(make_test_token(settings, lifetime=args.lifetime, claims=claims))
    except ValueError as exc:
        print(f"echo-stream-token: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
