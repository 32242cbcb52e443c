"""Throttling of failed authentication, per client address.

Each client has a leaky bucket: a failed sign-in or a request with a bad token (or a dead
session cookie) adds one; the bucket drains at ``per_minute`` per minute. While it is too
full for one more failure (after ``burst`` in a row), every request of that client that
presents credentials is answered 429 with Retry-After before anything is looked up, so
guessing tokens costs one try per ``60 / per_minute`` seconds. Requests without
credentials are never throttled here.

In memory, per API process (several uvicorn workers each keep their own buckets): the point
is to make guessing slow and to keep a flood of bad tokens off the database, not an exact
global quota. The table is bounded: buckets that have drained are dropped first, then the
least recently used.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class FailureThrottle:
    def __init__(
        self,
        burst: int,
        per_minute: float,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_minute <= 0 or max_clients < 1:
            raise ValueError("burst and max_clients must be at least 1, per_minute above 0")
        self.burst = burst
        self.rate = per_minute / 60.0  # drained per second
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # level, when
        self._lock = threading.Lock()

    def _level(self, client: str, now: float) -> float:
        level, when = self._buckets.get(client, (0.0, now))
        return max(0.0, level - (now - when) * self.rate)

    def retry_after(self, client: str) -> int | None:
        """Whole seconds this client must wait before its credentials are looked at again,
        or None when it may try now."""
        with self._lock:
            now = self._clock()
            level = self._level(client, now)
        excess = level + 1.0 - self.burst  # how far another failure would overfill it
        if excess <= 1e-9:
            return None
        return max(1, math.ceil(excess / self.rate - 1e-9))

    def failed(self, client: str) -> None:
        with self._lock:
            now = self._clock()
            level = self._level(client, now) + 1.0
            self._buckets[client] = (level, now)
            self._buckets.move_to_end(client)
            if len(self._buckets) > self.max_clients:
                self._prune(now)

    def _prune(self, now: float) -> None:
        drained = [c for c in self._buckets if self._level(c, now) <= 0.0]
        for c in drained:
            del self._buckets[c]
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
