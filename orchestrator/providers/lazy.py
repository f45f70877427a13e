"""An SDK client made on first use, once, whichever thread asks first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LazyClient(Generic[T]):
    """Holds a ready client, or a function making one when ``get`` is first called. SDK clients are not
    callable, so a callable argument is always the maker."""

    def __init__(self, client_or_maker: T | Callable[[], T]) -> None:
        self._maker: Callable[[], T] | None = client_or_maker if callable(client_or_maker) else None
        self._client: T | None = None if callable(client_or_maker) else client_or_maker
        self._lock = threading.Lock()

    @property
    def made(self) -> bool:
        return self._client is not None

    def get(self) -> T:
        if self._client is None:
            with self._lock:
                if self._client is None and self._maker is not None:
                    self._client = self._maker()
        if self._client is None:
            raise RuntimeError("the client maker returned None")
        return self._client
