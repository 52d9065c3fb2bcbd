"""JWT authentication: each way a token can be wrong is refused with the right code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from permission_mongo.policy import ConfigError
from permission_mongo.server._settings import load_settings

from .harness import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, Gateway, assert_error, clean_environment, make_token, serve_command, write_config


def whoami(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A token assembled by hand, as an attacker would: ``sign(signing_input) -> bytes``."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = _b64(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


def valid_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "alice", "tenant_id": "acme", "roles": ["user"], "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "exp": now + 600}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def test_a_valid_token_becomes_the_identity(client: httpx.Client) -> None:
    token = make_token({"department": "sales", "level": 3})
    response = whoami(client, token)
    assert response.status_code == 200, response.text
    identity = response.json()
    assert identity["id"] == "alice"
    assert identity["tenant_id"] == "acme"
    assert identity["roles"] == ["user"]
    assert identity["attributes"]["department"] == "sales"
    assert identity["attributes"]["level"] == 3
    assert not {"sub", "tenant_id", "roles"} & set(identity["attributes"])


def test_no_credentials_is_unauthorized(client: httpx.Client) -> None:
    response = client.get("/v1/whoami")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Basic YWxpY2U6c2VjcmV0", "Bearer", "bearer", "Token abc"])
def test_unusable_authorization_header_is_unauthorized(client: httpx.Client, header: str) -> None:
    assert_error(client.get("/v1/whoami", headers={"Authorization": header}), 401, "UNAUTHORIZED")


def test_expired_token(client: httpx.Client) -> None:
    response = whoami(client, make_token(exp=int(time.time()) - 3600))
    assert_error(response, 401, "EXPIRED_TOKEN")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "token_kwargs",
    [
        pytest.param({"key": "another-secret-" + "x" * 60}, id="wrong-secret"),
        pytest.param({"algorithm": "HS512"}, id="algorithm-not-configured"),
        pytest.param({"iss": "https://evil.test/"}, id="wrong-issuer"),
        pytest.param({"aud": "another-app"}, id="wrong-audience"),
        pytest.param({"iss": None}, id="no-issuer"),
        pytest.param({"aud": None}, id="no-audience"),
        pytest.param({"exp": None}, id="no-expiry"),
        pytest.param({"sub": None}, id="no-subject"),
        pytest.param({"sub": 42}, id="subject-not-a-string"),
        pytest.param({"roles": "admin"}, id="roles-not-a-list"),
        pytest.param({"tenant_id": ["a", "b"]}, id="tenant-not-a-string"),
        pytest.param({"nbf": int(time.time()) + 3600}, id="not-yet-valid"),
    ],
)
def test_invalid_tokens_are_refused(client: httpx.Client, token_kwargs: dict[str, Any]) -> None:
    assert_error(whoami(client, make_token(**token_kwargs)), 401, "INVALID_TOKEN")


def test_alg_none_is_refused(client: httpx.Client) -> None:
    token = forge({"alg": "none", "typ": "JWT"}, valid_claims())
    assert_error(whoami(client, token), 401, "INVALID_TOKEN")
    assert_error(whoami(client, token.rstrip(".") + "."), 401, "INVALID_TOKEN")


def test_a_tampered_payload_is_refused(client: httpx.Client) -> None:
    header, _, signature = make_token().split(".")
    payload = _b64(json.dumps(valid_claims(roles=["pm:admin"])).encode())
    assert_error(whoami(client, f"{header}.{payload}.{signature}"), 401, "INVALID_TOKEN")


@pytest.mark.parametrize("token", ["abc", "a.b.c", "pm", "x" * 5000])
def test_garbage_is_an_invalid_token(client: httpx.Client, token: str) -> None:
    assert_error(whoami(client, token), 401, "INVALID_TOKEN")


# Built-in roles (pm:admin, pm:pdp) come from API keys; a token only grants them when its
# issuer is listed in auth.jwt.builtin_roles_issuers. Lookalikes are refused too, so no later
# comparison that folds case or trims can promote one.
BUILTIN_LOOKALIKES = ["pm:admin", "pm:pdp", "PM:admin", " pm:admin", "pm:admin ", "Pm:Admin", "pm:*", "\uff50\uff4d:admin"]


@pytest.mark.parametrize("role", BUILTIN_LOOKALIKES)
def test_a_token_may_not_carry_built_in_roles(client: httpx.Client, role: str) -> None:
    token = make_token(roles=["user", role])
    error = assert_error(client.get("/v1/admin/api-keys", headers={"Authorization": f"Bearer {token}"}), 401, "INVALID_TOKEN")
    assert "builtin_roles_issuers" in error["message"]
    # Refused as a whole, not just on the management API: the token claims what it cannot have.
    assert_error(whoami(client, token), 401, "INVALID_TOKEN")


def test_a_data_role_may_not_use_the_management_api(client: httpx.Client) -> None:
    token = make_token(roles=["admin", "manager"])
    response = client.get("/v1/admin/api-keys", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 403, "FORBIDDEN")


# Public-key algorithms: one gateway per algorithm, configured with a public key file.

def _private_key(algorithm: str) -> Any:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(private_key: Any) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class KeyedGateway:
    def __init__(self, gateway: Gateway, algorithm: str, private_key: Any) -> None:
        self.gateway = gateway
        self.algorithm = algorithm
        self.private_key = private_key
        self.public_pem = _public_pem(private_key)


@pytest.fixture(scope="module", params=["RS256", "ES256"])
def keyed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mongo_uri: str) -> Iterator[KeyedGateway]:
    algorithm = request.param
    private_key = _private_key(algorithm)
    config_dir = write_config(
        tmp_path_factory.mktemp(f"jwt-{algorithm}"),
        f"auth:\n  jwt:\n    algorithm: {algorithm}\n    public_key_file: jwt.pem\n    audience: {JWT_AUDIENCE}\n",
    )
    (config_dir / "jwt.pem").write_bytes(_public_pem(private_key))
    server = Gateway(serve_command(config_dir, "--port", "0", "--mongodb-uri", mongo_uri), env=clean_environment()).start()
    yield KeyedGateway(server, algorithm, private_key)
    server.stop()


def test_public_key_algorithms_accept_valid_tokens(keyed: KeyedGateway) -> None:
    token = jwt.encode(valid_claims(iss=None), keyed.private_key, algorithm=keyed.algorithm)
    with keyed.gateway.client(token) as http:
        response = http.get("/v1/whoami")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "alice"


def test_algorithm_confusion_is_refused(keyed: KeyedGateway) -> None:
    # The classic attack: an HS256 token whose HMAC key is the server's public key.
    def sign(data: bytes) -> bytes:
        return hmac.new(keyed.public_pem, data, hashlib.sha256).digest()

    token = forge({"alg": "HS256", "typ": "JWT"}, valid_claims(), sign)
    with keyed.gateway.client(token) as http:
        assert_error(http.get("/v1/whoami"), 401, "INVALID_TOKEN")


def test_a_token_signed_by_another_key_is_refused(keyed: KeyedGateway) -> None:
    for algorithm in ("RS256", "ES256"):
        token = jwt.encode(valid_claims(), _private_key(algorithm), algorithm=algorithm)
        with keyed.gateway.client(token) as http:
            assert_error(http.get("/v1/whoami"), 401, "INVALID_TOKEN")


def test_alg_none_is_refused_by_public_key_gateways(keyed: KeyedGateway) -> None:
    with keyed.gateway.client(forge({"alg": "none"}, valid_claims())) as http:
        assert_error(http.get("/v1/whoami"), 401, "INVALID_TOKEN")


def test_hs256_with_the_configured_secret_is_refused_by_public_key_gateways(keyed: KeyedGateway) -> None:
    with keyed.gateway.client(make_token(iss=None, key=JWT_SECRET)) as http:
        assert_error(http.get("/v1/whoami"), 401, "INVALID_TOKEN")


@pytest.fixture(scope="module")
def trusting(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str) -> Iterator[Gateway]:
    """A gateway that lets its (one) issuer grant built-in roles."""
    config_dir = write_config(
        tmp_path_factory.mktemp("jwt-builtin"),
        f"""\
auth:
  jwt:
    algorithm: HS256
    secret: {JWT_SECRET}
    issuer: {JWT_ISSUER}
    audience: {JWT_AUDIENCE}
    builtin_roles_issuers: [{JWT_ISSUER}]
""",
    )
    server = Gateway(serve_command(config_dir, "--port", "0", "--mongodb-uri", mongo_uri), env=clean_environment()).start()
    yield server
    server.stop()


def test_a_named_issuer_may_grant_built_in_roles(trusting: Gateway) -> None:
    with trusting.client(make_token(roles=["pm:admin"])) as http:
        assert http.get("/v1/admin/api-keys").status_code == 200
    with trusting.client(make_token(roles=["pm:pdp"])) as http:
        assert_error(http.get("/v1/admin/api-keys"), 403, "FORBIDDEN")  # pm:pdp is not pm:admin
    # Even from a trusted issuer, only the exact built-in names.
    for role in BUILTIN_LOOKALIKES[2:]:
        with trusting.client(make_token(roles=[role])) as http:
            assert_error(http.get("/v1/admin/api-keys"), 401, "INVALID_TOKEN")
    # Another issuer's token is not verified at all (the gateway requires its issuer).
    with trusting.client(make_token(roles=["pm:admin"], iss="https://evil.test/")) as http:
        assert_error(http.get("/v1/admin/api-keys"), 401, "INVALID_TOKEN")


@pytest.mark.parametrize(
    ("jwt_yml", "expected"),
    [
        pytest.param("    builtin_roles_issuers: [https://login.test/]\n", ["server.yml:5:28", "set auth.jwt.issuer too"], id="no-issuer"),
        pytest.param(
            "    issuer: https://login.test/\n    builtin_roles_issuers: [https://other.test/]\n",
            ["server.yml:6:28", "'https://other.test/' is not the issuer this gateway verifies"], id="another-issuer",
        ),
        pytest.param(
            "    issuer: https://login.test/\n    builtin_roles_issuers: 3\n",
            ["server.yml:6:28", "auth.jwt.builtin_roles_issuers must be a string or a non-empty list"], id="not-a-list",
        ),
        pytest.param(
            "    issuer: https://login.test/\n    builtin_role_issuers: [https://login.test/]\n",
            ["server.yml:6:5", "did you mean 'builtin_roles_issuers'"], id="misspelt",
        ),
    ],
)
def test_builtin_roles_issuers_errors_name_file_and_line(tmp_path: Any, jwt_yml: str, expected: list[str]) -> None:
    (tmp_path / "server.yml").write_text(f"auth:\n  jwt:\n    algorithm: HS256\n    secret: {JWT_SECRET}\n{jwt_yml}")
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, environ={})
    for text in expected:
        assert text in str(raised.value)
