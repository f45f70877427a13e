"""Keys as users name them, through both clouds and back: dot segments, percent signs, plus, spaces, unicode and
a trailing slash survive a copy and a restore byte for byte. Where a target cannot hold a key as itself (a
directory, and Azure, which resolves dot segments onto another blob name) the restore refuses it before writing
anything."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from orchestrator.errors import ExitCode, InvalidInput
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import backup_env, cli_copy, cli_restore, read_store, read_tree, seed
from tests.support.cli import assert_one_line_error, drctl

ODD_KEYS: dict[str, bytes] = {
    "a/./b.txt": b"a single dot segment",
    "a/../c.txt": b"a double dot segment",
    "..": b"only dots",
    "x/..": b"ends in dots",
    "100%20done/y.txt": b"a literal percent-two-zero",
    "100%/z%.txt": b"bare percent signs",
    "a+b=c.txt": b"plus and equals",
    "dir with space/file name.txt": b"spaces",
    "données/日本語/ключ-€.bin": "unicodé ✓".encode(),
    "trailing/": b"a key that ends in a slash, not empty",
    "plain.bin": os.urandom(70_000),
}
DOT_SEGMENTS = {k: v for k, v in ODD_KEYS.items() if {".", ".."} & set(k.split("/"))}
# What Azure can hold as named: everything but dot segments.
AZURE_NAMES = {k: v for k, v in ODD_KEYS.items() if k not in DOT_SEGMENTS}
# What a directory can hold: no dot segment, and no trailing slash.
SAFE_FOR_A_DIRECTORY = {k: v for k, v in AZURE_NAMES.items() if not k.endswith("/")}


@pytest.mark.parametrize("direction", ["s3-to-azure", "azure-to-s3"])
def test_odd_keys_go_through_a_set_in_the_other_cloud_and_back(
    lab_factory: StoreFactory,
    lab_env: dict[str, str],
    s3_bucket: str,
    az_container: str,
    tmp_path: Path,
    direction: str,
) -> None:
    s3, az = f"s3://{s3_bucket}", f"az://{az_container}"
    source_url, set_url, back_url = (
        (f"{s3}/src/", f"{az}/set/", f"{s3}/back/")
        if direction == "s3-to-azure"
        else (f"{az}/src/", f"{s3}/set/", f"{az}/back/")
    )
    keys = ODD_KEYS if direction == "s3-to-azure" else AZURE_NAMES
    seed(lab_factory.open(source_url), keys)
    # Listed as named: the source store neither drops nor rewrites any of these keys.
    assert read_store(lab_factory.open(source_url)) == keys
    env = backup_env(lab_env, tmp_path / "state")

    summary = cli_copy(source_url, set_url, "full", env)
    assert summary["objects_transferred"] == len(keys)
    cli_restore(set_url, back_url, env)
    assert read_store(lab_factory.open(back_url)) == keys

    # An incremental over the same keys finds nothing changed: every key compares equal to itself.
    again = cli_copy(source_url, set_url, "incremental", env)
    assert (again["objects_transferred"], again["objects_skipped"]) == (0, len(keys))


def test_azure_refuses_dot_segments_before_writing_anything(
    lab_factory: StoreFactory, lab_env: dict[str, str], s3_bucket: str, az_container: str, tmp_path: Path
) -> None:
    """Azure stores ``a/../c.txt`` as ``c.txt`` (and ``a/./b`` as ``a/b``): a restore of such keys into Azure
    would silently overwrite other blobs, so it is refused, and nothing is written."""
    store = lab_factory.open(f"az://{az_container}/direct/")
    for key in DOT_SEGMENTS:
        with pytest.raises(InvalidInput, match="resolves onto another blob name"):
            store.write(key, io.BytesIO(b"x"))
    assert list(store.list()) == []

    source_url, set_url, back_url = f"s3://{s3_bucket}/src/", f"s3://{s3_bucket}/set/", f"az://{az_container}/back/"
    seed(lab_factory.open(source_url), ODD_KEYS)
    env = backup_env(lab_env, tmp_path / "state")
    cli_copy(source_url, set_url, "full", env)
    refused = drctl("backup", "restore", set_url, back_url, env=env)
    assert_one_line_error(refused, ExitCode.INVALID_INPUT, "resolves onto another blob name", "nothing restored")
    assert list(lab_factory.open(back_url).list()) == []
    excludes = [arg for key in DOT_SEGMENTS for arg in ("--exclude", key)]
    cli_restore(set_url, back_url, env, *excludes)
    assert read_store(lab_factory.open(back_url)) == AZURE_NAMES


def test_a_restore_into_a_directory_refuses_keys_that_would_leave_it(
    lab_factory: StoreFactory, lab_env: dict[str, str], s3_bucket: str, az_container: str, tmp_path: Path
) -> None:
    source_url, set_url = f"s3://{s3_bucket}/src/", f"az://{az_container}/set/"
    seed(lab_factory.open(source_url), ODD_KEYS)
    env = backup_env(lab_env, tmp_path / "state")
    cli_copy(source_url, set_url, "full", env)

    target = tmp_path / "restored"
    refused = drctl("backup", "restore", set_url, str(target), env=env)
    assert_one_line_error(refused, ExitCode.INVALID_INPUT, "would escape the target", "nothing restored")
    assert not target.exists()

    # Leaving the unsafe keys out, the rest restores byte for byte ("trailing/" holds bytes, so it is not a
    # folder marker a directory could skip; it is left out too).
    excludes = [arg for key in ODD_KEYS.keys() - SAFE_FOR_A_DIRECTORY.keys() for arg in ("--exclude", key)]
    cli_restore(set_url, target, env, *excludes)
    assert read_tree(target) == SAFE_FOR_A_DIRECTORY


@pytest.mark.parametrize("cloud", ["s3", "az"])
def test_a_listing_under_a_prefix_with_percent_signs_finds_its_keys(
    lab_factory: StoreFactory, s3_bucket: str, az_container: str, cloud: str
) -> None:
    """The prefix goes into the listing's query: a ``%20`` in it is three characters of the name, not a space (the
    lean Azure client unquoted it before signing, and the service refused the signature)."""
    root = f"s3://{s3_bucket}" if cloud == "s3" else f"az://{az_container}"
    seed(lab_factory.open(f"{root}/src/"), AZURE_NAMES)
    under = lab_factory.open(f"{root}/src/100%20done/")
    assert [o.key for o in under.list()] == ["y.txt"]
    assert [o.key for o in lab_factory.open(f"{root}/src/").list("100%/")] == ["100%/z%.txt"]
