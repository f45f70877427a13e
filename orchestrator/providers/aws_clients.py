"""boto3 clients built one way for every AWS service drctl calls (S3, EC2, Route53).

Settings come from the conventional variables in the ``env`` passed in: ``AWS_ENDPOINT_URL_<SERVICE>`` or
``AWS_ENDPOINT_URL`` (the lab), the credential chain (keys, ``AWS_PROFILE``, roles) and the region. The SDK's
own retries are off so that tenacity is the only retry layer, and unusable settings are one-line errors.
Everything else (partitions, S3 region redirects, proxies from ``HTTPS_PROXY``/``NO_PROXY``, the CA bundle) is
botocore's own behaviour, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import AuthError, InvalidInput
from orchestrator.providers.base import CONNECT_TIMEOUT_S, READ_TIMEOUT_S


def malformed_credential(exc: BaseException, service: str) -> AuthError | None:
    """The error for a botocore ``HTTPClientError`` raised because a credential cannot be sent as a header (a
    session token read from a file with its newline): no retry can fix that, and the message never quotes it."""
    cause = getattr(exc, "kwargs", {}).get("error")
    if isinstance(cause, ValueError) and "Invalid header value" in str(cause):
        return AuthError(
            f"an AWS credential cannot be sent to {service}: it holds a line break or another character HTTP "
            "headers refuse (read from a file with its newline?); strip it from AWS_SESSION_TOKEN or the keys"
        )
    return None


def aws_region(env: Mapping[str, str], region: str | None = None) -> str:
    return region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


def aws_endpoint(env: Mapping[str, str], service: str) -> str | None:
    """The endpoint set for ``service`` (None: the SDK's own endpoint rules decide). A user name, password or
    query in it is refused: botocore would send the userinfo as part of the Host header and every message
    naming the endpoint would print it."""
    name = f"AWS_ENDPOINT_URL_{service.upper()}"
    if not env.get(name):
        name = "AWS_ENDPOINT_URL"
    endpoint = env.get(name) or None
    if endpoint is None:
        return None
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{name} must be an http(s) URL such as http://127.0.0.1:4566")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise InvalidInput(
            f"{name} must not carry a user name, password or query; give credentials through "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role"
        )
    return endpoint.strip()


def _endpoint_switches(env: Mapping[str, str]) -> dict[str, Any]:
    """FIPS and dual-stack endpoints as the AWS CLI reads them, from the ``env`` given (botocore alone would
    read only the process environment)."""
    switches: dict[str, Any] = {}
    for variable, option in (
        ("AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint"),
        ("AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint"),
    ):
        value = env.get(variable, "").strip().lower()
        if value in ("true", "false"):
            switches[option] = value == "true"
        elif value:
            raise InvalidInput(f"{variable} must be true or false, not {value[:20]!r}")
    return switches


def aws_client(env: Mapping[str, str], service: str, region: str | None = None, **config: Any) -> Any:
    """A new client for ``service``; ``config`` adds botocore ``Config`` options. Callers cast the result to
    the service's client type and share clients as they see fit (they are thread-safe)."""
    # Imported here: boto3 takes a noticeable part of a second to import, and many commands never need it.
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    endpoint = aws_endpoint(env, service)
    if service == "s3":
        # Emulators and most S3-compatible endpoints only route path-style requests.
        config.setdefault("s3", {"addressing_style": "path" if endpoint else "auto"})
    settings = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        **_endpoint_switches(env),
        **config,
    )
    try:
        session = boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
            profile_name=env.get("AWS_PROFILE"),
            region_name=aws_region(env, region),
        )
        return session.client(service, endpoint_url=endpoint, config=settings)  # type: ignore[call-overload]
    except ProfileNotFound as exc:
        raise AuthError(f"AWS profile {env.get('AWS_PROFILE')!r} is not configured; fix AWS_PROFILE") from exc
    except (BotoCoreError, ValueError) as exc:
        raise InvalidInput(
            f"the AWS settings are not usable ({type(exc).__name__}): check AWS_ENDPOINT_URL "
            "(a full URL such as http://127.0.0.1:4566) and AWS_REGION"
        ) from exc
