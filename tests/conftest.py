"""Fixtures shared by every tier of tests. Lab fixtures skip with a reason when the lab is not up, and fail
instead under ``make test`` (DRCTL_REQUIRE_LAB=1), so CI can never pass by skipping the real emulators."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient

from orchestrator.providers.factory import StoreFactory
from orchestrator.retry import RetryPolicy
from tests.support.fake_s3 import fake_s3  # noqa: F401 - a fixture, shared by every test that asks for it
from tests.support.forward_proxy import forward_proxy  # noqa: F401 - a fixture, as above
from tests.support.lab import NOT_RUNNING, lab_settings, temporary_bucket, temporary_container


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    settings = lab_settings()
    if settings is None:
        if os.environ.get("DRCTL_REQUIRE_LAB") == "1":
            pytest.fail(NOT_RUNNING)
        pytest.skip(NOT_RUNNING)
    return settings


@pytest.fixture(scope="session")
def lab_factory(lab_env: dict[str, str]) -> StoreFactory:
    # Few, fast retries: the lab is local, and a test should not wait out a long backoff.
    return StoreFactory(lab_env, retry=RetryPolicy(attempts=3, initial_wait_s=0.05, max_wait_s=0.5))


@pytest.fixture
def s3_bucket(lab_factory: StoreFactory) -> Iterator[str]:
    with temporary_bucket(lab_factory) as name:
        yield name


@pytest.fixture
def az_container(lab_factory: StoreFactory) -> Iterator[str]:
    service: BlobServiceClient = lab_factory.blob_service()
    with temporary_container(service) as name:
        yield name
