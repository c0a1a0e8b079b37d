"""Chains: ``chain([a, b, c]).catch(cb).dispatch()`` runs jobs one after another.

Each link starts only when the one before it succeeded; a link that fails for good
stops the chain and dispatches its ``catch`` callback with ``error=``. A link may be
a batch, and a batch may hold chains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.specs import callback_body, link_spec

if TYPE_CHECKING:
    from core.dispatcher import Dispatcher


class PendingChain:
    def __init__(self, links: list[Any]) -> None:
        self._links = list(links)
        self._catch: Any = None
        self._defaults: dict[str, str] = {}

    def catch(self, callback: Any) -> PendingChain:
        self._catch = callback
        return self

    def on_queue(self, queue: str) -> PendingChain:
        self._defaults["queue"] = queue
        return self

    def on_connection(self, connection: str) -> PendingChain:
        self._defaults["connection"] = connection
        return self

    def links(self, dispatcher: Dispatcher, defaults: dict[str, str] | None = None) -> list[dict]:
        merged = {**(defaults or {}), **self._defaults}
        return [link_spec(link, dispatcher, merged) for link in self._links]

    def catch_body(self, dispatcher: Dispatcher) -> dict | None:
        if self._catch is None:
            return None
        return callback_body(self._catch, dispatcher, self._defaults)

    def dispatch(self) -> None:
        from core.dispatcher import get_dispatcher

        get_dispatcher().dispatch_chain(self)


def chain(links: list[Any]) -> PendingChain:
    return PendingChain(links)
