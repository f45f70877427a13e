"""The local lab: its life cycle (``lab.py``, also run as a script) and its demo estate (the ``seed`` package)."""
