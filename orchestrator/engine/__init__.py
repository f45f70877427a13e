"""Running runbooks: locks, the journal and the executor."""
