"""POST a one-line message to a Slack-compatible webhook (``{"text": ...}``): the ``notify`` action's channel,
and ``drctl protect``'s alerts.

Webhook URLs carry their token in the path, so no message or error here ever contains the URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from orchestrator.errors import Permanent, Transient


def post_text(webhook: str, text: str, timeout: float = 30.0) -> None:
    """Send ``text``. Network errors and 5xx/429 answers raise ``Transient`` (worth a retry); other 4xx
    answers are a misconfigured webhook and raise ``Permanent``."""
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(  # noqa: S310 - callers accept only http(s) URLs
        webhook, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310
            pass
    except urllib.error.HTTPError as err:
        if err.code >= 500 or err.code == 429:
            raise Transient(f"the webhook answered {err.code}") from None
        raise Permanent(f"the webhook refused the message ({err.code}); check its URL") from None
    except (OSError, ValueError) as err:
        raise Transient(f"cannot reach the webhook: {type(err).__name__}") from None
