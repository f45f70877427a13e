"""Secrets are masked wherever a run writes text."""

from __future__ import annotations

from orchestrator.engine.redact import MASK, env_references, looks_secret, redact, secrets_of


def test_secret_looking_names() -> None:
    for name in ("AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_SAS", "DB_PASSWORD", "GH_TOKEN", "AZ_CONNECTION_STRING"):
        assert looks_secret(name), name
    for name in ("HOME", "PATH", "REGION"):
        assert not looks_secret(name), name


def test_secrets_are_referenced_or_secret_named_values() -> None:
    env = {"HOME": "/home/me", "DB_PASSWORD": "hunter22", "PLAIN": "visible-value", "REF": "referenced-1", "X": "1"}
    assert secrets_of(env, {"REF", "X", "MISSING"}) == {"hunter22", "referenced-1"}


def test_env_references_at_any_depth() -> None:
    doc = {"command": "echo ${env.A} $${env.NOT}", "env": {"K": "${env.B}"}, "list": ["${params.p}", "${env.C}"]}
    assert env_references(doc) == {"A", "B", "C"}


def test_redact_masks_longest_first() -> None:
    assert redact("k=abcdef and abcd", ["abcd", "abcdef"]) == f"k={MASK} and {MASK}"
    assert redact("nothing here", []) == "nothing here"


def test_a_secret_with_a_trailing_newline_is_masked_as_http_client_echoes_it() -> None:
    # A token read from a file verbatim: http.client's refusal quotes the bytes' repr, escaped newline and all.
    token = "FwoGZXIvYXdzEBAaDCanary0123456789\n"
    secrets = secrets_of({"AWS_SESSION_TOKEN": token})
    message = f"ValueError: Invalid header value {token.encode()!r}"
    masked = redact(message, secrets)
    assert "Canary0123456789" not in masked
    assert masked == "ValueError: Invalid header value b'***'"
    assert redact(f"token={token.strip()};", secrets) == "token=***;"
