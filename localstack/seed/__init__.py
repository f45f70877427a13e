"""Seed the local lab with a small, realistic DR estate and write the stack outputs that describe it.

Usage: python -m localstack.seed --out PATH [--name-prefix drctl-lab]

The estate mirrors what ``pulumi up`` of the ``lab`` stack builds (``stacks/Pulumi.lab.yaml`` is read for
tiers, CIDRs, images and DNS names, so the two cannot drift apart), plus data worth recovering:

- us-east-1: ``<prefix>-app-data`` (a sample application: a SQL dump and some files) and the protected backup
  bucket ``<prefix>-backups`` holding a drctl backup set ``sets/app/`` with one full and two incremental
  recovery points of it; ``<prefix>-backups-replica`` in us-west-2 is its replica.
- Azurite: the container ``<prefix>-vault``, an (empty) cross-cloud copy target. The outputs do not name it:
  like the lab stack, which has no Azure control plane to build a vault with, they leave the vault fields null.
- us-west-2: the recovery VPC (public and private subnets in two zones, internet gateway), the isolated drill
  VPC (no gateway), a security group per tier in each, one AMI copy per tier and stopped standby instances
  (``count`` per tier of ``drctl:tiers``).
- Route 53: the production zone with a health check and PRIMARY/SECONDARY failover records, and a private
  drill zone visible only from the drill VPC.
- IAM: the orchestrator role runbooks assume, and the S3 replication role.

Every step finds what already exists (by Name tag, deterministic name, zone comment or caller reference) before
creating anything, so a second run changes nothing and writes the same outputs. Only the local lab is ever
touched: without ``AWS_ENDPOINT_URL`` the seeder refuses to run rather than reach a real AWS account.

Exit codes: 0 seeded, 1 a cloud call failed, 2 bad arguments or config, 6 the lab is not reachable,
130 interrupted. Every failure is one line on stderr; re-running resumes where the failed run stopped.
"""
