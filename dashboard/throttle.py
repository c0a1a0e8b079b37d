"""Login throttling in Redis, per account and per address, so that every dashboard
process behind a load balancer counts the same failures."""

from __future__ import annotations

import redis

from core.keys import Keys

ADDRESS_FACTOR = 4  # an address may fail for a few accounts (a shared office) before it waits


class LoginThrottle:
    def __init__(self, client: redis.Redis, keys: Keys, attempts: int, window_s: int) -> None:
        self.client = client
        self.keys = keys
        self.attempts = attempts
        self.window_s = window_s

    def wait_s(self, email: str, address: str) -> int:
        """Seconds until this account and address may try again; 0 when they may now."""
        account, place = self._keys(email, address)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(account).ttl(account).get(place).ttl(place)
        account_failures, account_ttl, address_failures, address_ttl = pipe.execute()
        waits = [0]
        if int(account_failures or 0) >= self.attempts:
            waits.append(max(account_ttl, 1))
        if int(address_failures or 0) >= self.attempts * ADDRESS_FACTOR:
            waits.append(max(address_ttl, 1))
        return max(waits)

    def failed(self, email: str, address: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in self._keys(email, address):
            pipe.set(key, 0, ex=self.window_s, nx=True).incr(key)  # the window starts at the first
        pipe.execute()

    def succeeded(self, email: str) -> None:
        self.client.delete(self.keys.login_failures("account", email.strip().lower()))

    def _keys(self, email: str, address: str) -> tuple[str, str]:
        return (
            self.keys.login_failures("account", email.strip().lower()),
            self.keys.login_failures("address", address),
        )
