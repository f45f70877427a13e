"""Corruption (issue #14): single-byte flips, truncations and deletions across data blobs, recovery-point
manifests and key material, in plain, compressed, encrypted and compressed+encrypted sets, in a local directory
(the bulk) and on the lab's S3 and Azure Blob. ``drctl backup verify --deep`` must find every one (the right exit
code, naming the damaged object or point), and ``drctl backup restore`` must refuse in one line and write no
affected object: whatever it did write must be a whole, right object of the point. How cases are batched into
rounds, and why, is in ``tests/chaos/corruption.py``.

``make chaos`` plays 164 cases on local sets and 52 on each lab store (268); ``make test`` plays 12 and 2 + 2.
Every case's offsets and choices come from one seed, printed with every failure and in the figures:
``DRCTL_CHAOS_SEED=<seed>`` replays a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from random import Random

import pytest

from orchestrator.providers.factory import StoreFactory
from tests.chaos.corruption import (
    BOTH,
    COMPRESSED,
    ENCRYPTED,
    KINDS,
    PLAIN,
    SEED,
    Kind,
    LocalRaw,
    LocalTarget,
    Place,
    Player,
    RestoreTarget,
    Round,
    StoreRaw,
    StoreTarget,
    blob_cuts,
    blob_flips,
    build_sets,
    key_material,
    manifest,
    misses,
    summary,
)
from tests.chaos.figures import full_scale, record, scaled
from tests.support.backup import backup_env


def slug(kind_name: str) -> str:
    return kind_name.replace("+", "-")


def local_rounds() -> list[Round]:
    if not full_scale():
        return [
            blob_flips(COMPRESSED, "header", "middle", "last"),
            blob_cuts(PLAIN, truncations=1, deletions=1),
            manifest(ENCRYPTED, "flip", "header"),
            manifest(BOTH, "truncate"),
            manifest(PLAIN, "delete"),
            key_material(ENCRYPTED, "flip", "middle"),
            key_material(BOTH, "flip", "kek_id"),
            key_material(BOTH, "truncate"),
            key_material(ENCRYPTED, "delete"),
        ]
    rounds: list[Round] = []
    for kind in KINDS:
        rounds += [blob_flips(kind, "header", "middle", "last", "header", "middle", "last") for _ in range(3)]
        rounds += [blob_cuts(kind, truncations=3, deletions=3) for _ in range(2)]
        rounds += [manifest(kind, "flip", where) for where in ("header", "middle", "last")]
        rounds += [manifest(kind, "truncate"), manifest(kind, "truncate"), manifest(kind, "delete")]
        rounds += [manifest(kind, "delete")]
        if kind.encrypt:
            rounds += [key_material(kind, "flip", where) for where in ("header", "middle", "last")]
            rounds += [key_material(kind, "flip", "kek_id"), key_material(kind, "flip", "kek_id")]
            rounds += [key_material(kind, "truncate"), key_material(kind, "truncate"), key_material(kind, "delete")]
    return rounds


def lab_rounds(short: Round) -> list[Round]:
    if not full_scale():
        return [short]
    rounds: list[Round] = []
    for kind in KINDS:
        rounds += [
            blob_flips(kind, "header", "middle", "last", "header", include_largest=True),
            blob_cuts(kind, truncations=2, deletions=2),
            manifest(kind, "flip", "middle"),
            manifest(kind, "truncate"),
            manifest(kind, "delete"),
        ]
        if kind.encrypt:
            rounds += [
                key_material(kind, "flip", "header"),
                key_material(kind, "flip", "kek_id"),
                key_material(kind, "truncate"),
                key_material(kind, "delete"),
            ]
    return rounds


def play(place: Place, rounds: Sequence[Round], tmp_path: Path, test: str, expected_cases: int) -> None:
    """Play every round, record the figures, then fail naming every case that did not end as the contract says."""
    rng = Random(f"{SEED}:{test}")
    kinds: list[Kind] = [k for k in KINDS if any(r.kind == k for r in rounds)]
    sets = build_sets(place, kinds, tmp_path / "source", tmp_path / "state", rng)
    player = Player(place, sets, rng)
    for rnd in rounds:
        player.play(rnd)
    cases, survived, detail = summary(player)
    record("corruption", cases=cases, survived=survived, detail=detail)
    failed = list(misses(player))
    if failed:
        pytest.fail(
            f"{len(failed)} of {cases} corruption cases did not end as the contract says "
            f"(replay: DRCTL_CHAOS_SEED={SEED}):\n" + "\n".join(failed),
            pytrace=False,
        )
    assert cases == expected_cases


def test_corruption_of_sets_in_a_local_directory(tmp_path: Path) -> None:
    def target(n: int) -> RestoreTarget:
        return LocalTarget(tmp_path / "restored" / str(n))

    place = Place(
        name="local dir",
        factory=StoreFactory({}),
        env=backup_env({}, tmp_path / "state"),
        set_url=lambda kind: str(tmp_path / "sets" / slug(kind)),
        raw=lambda kind: LocalRaw(tmp_path / "sets" / slug(kind)),
        target=target,
    )
    play(place, local_rounds(), tmp_path, "local", scaled(full=164, short=12))


@pytest.mark.lab
def test_corruption_of_sets_on_s3(
    lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, tmp_path: Path
) -> None:
    def target(n: int) -> RestoreTarget:
        return StoreTarget(f"s3://{s3_bucket}/restored/{n}/", lab_factory, bucket=s3_bucket)

    place = Place(
        name="S3 (LocalStack)",
        factory=lab_factory,
        env=backup_env(lab_env, tmp_path / "state"),
        set_url=lambda kind: f"s3://{s3_bucket}/sets/{slug(kind)}/",
        raw=lambda kind: StoreRaw(lab_factory.open(f"s3://{s3_bucket}/sets/{slug(kind)}/")),
        target=target,
        large=True,
    )
    short = blob_flips(BOTH, "header", "last", include_largest=True)
    play(place, lab_rounds(short), tmp_path, "s3", scaled(full=52, short=2))


@pytest.mark.lab
def test_corruption_of_sets_on_azure_blob(
    lab_env: dict[str, str], lab_factory: StoreFactory, az_container: str, tmp_path: Path
) -> None:
    def target(n: int) -> RestoreTarget:
        return StoreTarget(f"az://{az_container}/restored/{n}/", lab_factory)

    place = Place(
        name="Azure Blob (Azurite)",
        factory=lab_factory,
        env=backup_env(lab_env, tmp_path / "state"),
        set_url=lambda kind: f"az://{az_container}/sets/{slug(kind)}/",
        raw=lambda kind: StoreRaw(lab_factory.open(f"az://{az_container}/sets/{slug(kind)}/")),
        target=target,
        large=True,
    )
    short = blob_flips(COMPRESSED, "middle", "last", include_largest=True)
    play(place, lab_rounds(short), tmp_path, "azure", scaled(full=52, short=2))
