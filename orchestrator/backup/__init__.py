"""Backup sets: verified full, incremental and differential copies between any two stores, recovery points,
restore, verification and retention. Everything here is written once, over the ``ObjectStore`` protocols."""
