"""Every log record, whichever library made it, leaves drctl with its secrets masked."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.log_setup import SecretMask, configure_logging, log_level, mask_secrets

# Lines as the libraries print them at DEBUG (shapes taken from urllib3 2.x, botocore 1.44 and azure-core 1.41).
LEAKY_LINES = [
    (
        'http://127.0.0.1:10000 "PUT /devstoreaccount1/c/b?sv=2026-10-06&ss=b&srt=co&sp=rwl&se=2026-12-04T00%3A00%3A00Z'
        '&sig=Zm9v%2FYmFy%2BYmF6MQ%3D%3D HTTP/1.1" 201 0',
        "Zm9v%2FYmFy",
    ),
    (
        "Sending http request: <AWSPreparedRequest stream_output=True, method=GET, url=http://127.0.0.1:4566/b/k, "
        "headers={'X-Amz-Security-Token': b'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD', "
        "'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261203/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0123456789abcdef'}>",
        "IQoJb3JpZ2luX2VjEJr",
    ),
    (
        "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261203"
        "&X-Amz-Signature=feedfacecafebeef&X-Amz-Security-Token=tokentokentoken",
        "tokentokentoken",
    ),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0a2V5c2VjcmV0a2V5;", "c2VjcmV0a2V5"),
    ("BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=1&sig=abc/def", "abc/def"),
    # An age identity (a backup set's reading key), e.g. in a traceback's locals or an environment dump.
    ("identity: AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGP", "QYQSZQGPQYQSZQGP"),
]


@pytest.mark.parametrize(("line", "secret"), LEAKY_LINES)
def test_secrets_are_masked_by_their_shape(line: str, secret: str) -> None:
    masked = mask_secrets(line)
    assert secret not in masked
    assert "***" in masked


def test_known_secret_values_are_masked_wherever_they_appear() -> None:
    assert mask_secrets("key is hunter2-value here", ["hunter2-value"]) == "key is *** here"


def test_what_is_not_a_secret_is_left_alone() -> None:
    line = 'http://127.0.0.1:4566 "GET /bucket/key?list-type=2&prefix=a%2Fb HTTP/1.1" 200 512'
    assert mask_secrets(line) == line


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretMask(["s3cr3t-value"]))
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_the_filter_masks_arguments_and_tracebacks_of_any_logger(captured: io.StringIO) -> None:
    logging.getLogger("urllib3.connectionpool").debug('"%s %s HTTP/1.1" %s', "GET", "/c/b?sig=abc%2Fdef", 200)
    failure = RuntimeError("failed with s3cr3t-value in it")
    logging.getLogger("botocore.endpoint").error("request failed", exc_info=(RuntimeError, failure, None))
    text = captured.getvalue()
    assert "GET /c/b?sig=***" in text
    assert "abc%2Fdef" not in text
    assert "s3cr3t-value" not in text
    assert "RuntimeError" in text  # the traceback is kept, masked


def test_a_malformed_log_call_is_passed_on_not_raised_from_the_filter() -> None:
    # A library's "%s" with one argument too few: the handler reports it as logging always does.
    record = logging.LogRecord("somelib", logging.WARNING, __file__, 1, "%s and %s", ("one",), None)
    assert SecretMask().filter(record) is True


def test_the_level_comes_from_drctl_log_level() -> None:
    assert log_level({}) == logging.ERROR
    assert log_level({"DRCTL_LOG_LEVEL": "DEBUG"}) == logging.DEBUG
    with pytest.raises(InvalidInput, match="DRCTL_LOG_LEVEL must be one of"):
        log_level({"DRCTL_LOG_LEVEL": "loud"})


def test_configure_logging_installs_one_masking_handler() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging({"DRCTL_LOG_LEVEL": "info", "AZURE_STORAGE_KEY": "c2VjcmV0a2V5"})
        assert root.level == logging.INFO
        assert len(root.handlers) == 1
        assert any(isinstance(f, SecretMask) for f in root.handlers[0].filters)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
