"""drctl: multi-cloud disaster-recovery orchestration with verified backups, runbooks and drills."""

__version__ = "0.1.0"
