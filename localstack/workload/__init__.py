"""The lab's three-tier demo shop, as the programs its EC2 instances run (their user data starts them).

- ``db``: PostgreSQL on the instance's private address. The primary one creates the shop's schema and
  ``pg_dump``s it into S3 on a schedule (the source data of the backup sets); a standby one starts empty,
  for ``db.restore`` to fill.
- ``app``: an HTTP service over the database (orders); the primary one also runs the writer, a customer
  stand-in that commits orders continuously, each with its commit time.
- ``web``: a page served through the app.

Each tier finds the one below it by EC2 tags in its own VPC (the lab's stand-in for cloud auto-join), and a
drill copy only ever finds copies of the same drill. Run as ``python -m localstack.workload TIER``.
"""
