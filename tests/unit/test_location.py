from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.providers.location import Location, parse_location


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://bucket", Location("s3", "bucket", "")),
        ("s3://bucket/", Location("s3", "bucket", "")),
        ("s3://my.bucket-1/db/daily", Location("s3", "my.bucket-1", "db/daily/")),
        ("s3://bucket/db/daily/", Location("s3", "bucket", "db/daily/")),
        ("az://backups/db", Location("az", "backups", "db/")),
        ("AZ://backups", Location("az", "backups", "")),
        ("file:///srv/backups", Location("file", "/srv/backups")),
        ("file:///srv/with%20space", Location("file", "/srv/with space")),
    ],
)
def test_valid_locations(text: str, expected: Location) -> None:
    assert parse_location(text) == expected


def test_plain_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_location("backups") == Location("file", str(tmp_path / "backups"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        (" s3://bucket", "surrounding spaces"),
        ("gs://bucket", "unknown scheme 'gs'"),
        ("s3://ab", "not a valid S3 bucket name"),
        ("s3://Upper", "not a valid S3 bucket name"),
        ("s3://a..b", "not a valid S3 bucket name"),
        ("az://-leading", "not a valid Azure container name"),
        ("az://double--dash", "not a valid Azure container name"),
        ("s3://bucket/a//b", "empty, '.' or '..'"),
        ("az://container/./x", "empty, '.' or '..'"),
        ("file://relative", "absolute path"),
    ],
)
def test_invalid_locations_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=None) as err:
        parse_location(text)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)
