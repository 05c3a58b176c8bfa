"""A denial budget per client address: a client whose KBS requests keep failing gets 429 before any work.

Every KBS denial is appended to the attestation log, which never shrinks, and
the KBS endpoints answer unauthenticated callers (anyone may ask for a nonce
and submit evidence, which a denial entry keeps). Without a bound, one client
could grow the log as fast as the broker appends. So each KBS error answer
(4xx) spends one unit of its address's budget (`denials_per_minute`, a moving
window); once it is spent, that address's KBS requests are refused with 429
and `Retry-After` until the window moves on. A refused request does no work
and is not logged (it is counted in `veil_broker_rate_limited_total`).
Successful attestations and releases never spend budget.

The budget is kept by the `limits` library: `memory://` (default) keeps it per
worker process; a shared storage URI (`redis://…`) makes it one budget across
workers and replicas. Clients behind one NAT address share a budget: set the
rate for that, or 0 to turn the budget off (a proxy in front then has to do it).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .errors import BrokerError

NAMESPACE = "veil-kbs-denials"


class TooManyDenials(BrokerError):
    status, kbs_type = 429, "TooManyRequests"

    def __init__(self, retry_after: int) -> None:
        super().__init__("kbs.too_many_denials", f"too many denied KBS requests from this address; retry in "
                                                 f"{retry_after} s")
        self.retry_after = retry_after


class DenialBudget:
    """`denials_per_minute` KBS error answers per client address (0: unlimited)."""

    def __init__(self, denials_per_minute: int, storage_uri: str = "memory://") -> None:
        self.enabled = denials_per_minute > 0
        self._item = RateLimitItemPerMinute(max(denials_per_minute, 1), namespace=NAMESPACE)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def check(self, address: str) -> None:
        """Raise TooManyDenials (with the seconds to wait) if `address` has spent its budget."""
        if self.enabled and not self._limiter.test(self._item, address):
            reset = self._limiter.get_window_stats(self._item, address).reset_time
            raise TooManyDenials(max(1, math.ceil(reset - time.time())))

    def spend(self, address: str) -> None:
        if self.enabled:
            self._limiter.hit(self._item, address)
