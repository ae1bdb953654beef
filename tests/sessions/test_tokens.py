"""JWT verification is pinned by configuration; stream tokens are random and stored as hashes."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from echo_stream.errors import Unauthorized
from echo_stream.sessions.tokens import (
    JwtVerifier,
    hash_token,
    hashes_match,
    main,
    make_test_token,
    new_stream_token,
)
from tests.conftest import make_settings
from tests.sessions.fakes import SECRET


def _token(claims: dict[str, Any] | None = None, key: Any = SECRET, alg: str = "HS256") -> str:
    payload = {"exp": int(time.time()) + 60, **(claims or {})}
    return jwt.encode(payload, key, algorithm=alg)


def _verifier(**overrides: Any) -> JwtVerifier:
    verifier = JwtVerifier.from_settings(make_settings(jwt_secret=SECRET, **overrides))
    assert verifier is not None
    return verifier


def test_a_good_token_gives_its_claims() -> None:
    claims = _verifier().verify(_token({"sub": "u1"}))
    assert claims["sub"] == "u1"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "Missing"),
        ("", "Missing"),
        ("not-a-jwt", "rejected"),
        (_token(key="another-secret-of-sufficient-length-0123456789"), "Signature"),
        (jwt.encode({"sub": "no exp"}, SECRET, algorithm="HS256"), "exp"),
        (_token({"exp": int(time.time()) - 3600}), "expired"),
        (_token(alg="HS512"), "alg"),
        (jwt.encode({"exp": int(time.time()) + 60}, None, algorithm="none"), "alg"),
    ],
    ids=[
        "none-given",
        "empty",
        "garbage",
        "bad-signature",
        "no-exp",
        "expired",
        "other-hs",
        "alg-none",
    ],
)
def test_bad_tokens_are_401(token: str | None, message: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        _verifier().verify(token)
    assert caught.value.status == 401
    assert message.lower() in caught.value.message.lower()


def test_the_algorithm_is_never_taken_from_the_token() -> None:
    """HS/RS confusion: an RS256-pinned gateway refuses an HS256 token signed with the public key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = JwtVerifier.from_settings(
        make_settings(jwt_algorithm="RS256", jwt_public_key=public_pem)
    )
    assert verifier is not None
    assert verifier.verify(_token({"sub": "rs"}, key=private, alg="RS256"))["sub"] == "rs"
    with pytest.raises(Unauthorized):
        verifier.verify(_token(key=private, alg="PS256"))
    # A token "signed" with the public key as an HMAC secret must never pass.
    forged = jwt.api_jws.PyJWS(algorithms=["HS256"])
    payload = b'{"exp": %d}' % (int(time.time()) + 60)
    try:
        token = forged.encode(payload, public_pem.encode(), algorithm="HS256")
    except jwt.exceptions.InvalidKeyError:
        return  # PyJWT itself refuses to HMAC with a PEM key: the attack cannot even be built
    with pytest.raises(Unauthorized):
        verifier.verify(token)


def test_an_es256_key_works_when_configured() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = JwtVerifier.from_settings(
        make_settings(jwt_algorithm="ES256", jwt_public_key=public_pem, jwt_secret=SECRET)
    )
    assert verifier is not None
    assert verifier.verify(_token({"a": 1}, key=private, alg="ES256"))["a"] == 1
    with pytest.raises(Unauthorized):  # the HS secret is not what an ES256 gateway checks
        verifier.verify(_token())


@pytest.mark.parametrize(
    ("claims", "ok"),
    [
        ({"aud": "echo", "iss": "n8n"}, True),
        ({"aud": ["other", "echo"], "iss": "n8n"}, True),
        ({"aud": "other", "iss": "n8n"}, False),
        ({"iss": "n8n"}, False),
        ({"aud": "echo", "iss": "someone-else"}, False),
        ({"aud": "echo"}, False),
    ],
)
def test_audience_and_issuer_when_configured(claims: dict[str, Any], ok: bool) -> None:
    verifier = _verifier(jwt_audience="echo", jwt_issuer="n8n")
    if ok:
        assert verifier.verify(_token(claims))["iss"] == "n8n"
    else:
        with pytest.raises(Unauthorized):
            verifier.verify(_token(claims))


def test_unconfigured_audience_ignores_a_token_aud() -> None:
    assert _verifier().verify(_token({"aud": "anything"}))["aud"] == "anything"


def test_leeway_accepts_a_just_expired_token_only() -> None:
    verifier = _verifier(jwt_leeway_seconds=30)
    assert verifier.verify(_token({"exp": int(time.time()) - 5}))
    with pytest.raises(Unauthorized):
        verifier.verify(_token({"exp": int(time.time()) - 120}))


def test_no_key_means_no_verifier() -> None:
    assert JwtVerifier.from_settings(make_settings()) is None
    assert (
        JwtVerifier.from_settings(make_settings(jwt_algorithm="RS256", jwt_secret=SECRET)) is None
    )


def test_resume_url_claim() -> None:
    verifier = _verifier()
    assert verifier.resume_url_of({"resumeUrl": "http://n8n/webhook-waiting/1"}) == (
        "http://n8n/webhook-waiting/1"
    )
    assert verifier.resume_url_of({"resumeUrl": 5}) is None
    assert verifier.resume_url_of({}) is None


def test_stream_tokens_are_random_and_checked_by_hash() -> None:
    tokens = {new_stream_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) >= 43
    stored = hash_token(token)
    assert token not in stored
    assert hashes_match(hash_token(token), stored)
    assert not hashes_match(hash_token(token + "x"), stored)
    # No token at all is refused before any hash is compared (tests/api: a 401).


def test_cli_prints_a_token_the_gateway_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("JWT_AUDIENCE", "echo")
    assert main(["--sub", "user-1", "--resume-url", "http://n8n:5678/webhook-waiting/7"]) == 0
    token = capsys.readouterr().out.strip()
    claims = _verifier(jwt_audience="echo").verify(token)
    assert claims["sub"] == "user-1"
    assert claims["aud"] == "echo"
    assert claims["resumeUrl"] == "http://n8n:5678/webhook-waiting/7"


def test_cli_without_a_secret_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.chdir("/")  # no .env
    assert main([]) == 2
    assert "JWT_SECRET" in capsys.readouterr().err


def test_make_test_token_refuses_asymmetric_settings() -> None:
    with pytest.raises(ValueError):
        make_test_token(make_settings(jwt_algorithm="RS256"), lifetime=60, claims={})


def test_a_short_hmac_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        JwtVerifier.from_settings(make_settings(jwt_secret="too-short"))
