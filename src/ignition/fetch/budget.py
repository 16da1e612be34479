"""The global connection budget: how many transfers may stream at once, across all files.

One budget per HttpClient (sized by its `connections`, i.e. IGNITION_CONNECTIONS), so several
files fetched together share the link instead of each opening its own 16 connections. A slot is
held for one ranged request and given back after it, so files take turns fairly. The budget also
keeps the idle keep-alive connections those requests run on, closed with the client.
"""

from __future__ import annotations

import asyncio
import weakref

from ignition._http import HttpClient
from ignition.fetch.wire import WirePool


class ConnectionBudget:
    def __init__(self, connections: int, wire: WirePool) -> None:
        self.connections = connections
        self.wire = wire
        self._slots = asyncio.Semaphore(connections)

    async def __aenter__(self) -> ConnectionBudget:
        await self._slots.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()


_budgets: weakref.WeakKeyDictionary[HttpClient, ConnectionBudget] = weakref.WeakKeyDictionary()


def budget_for(client: HttpClient) -> ConnectionBudget:
    """The budget every transfer through `client` shares."""
    budget = _budgets.get(client)
    if budget is None:
        wire = WirePool(
            connect_timeout_s=client.connect_timeout_s,
            read_timeout_s=client.read_timeout_s,
            guard=client.guard,
        )
        client.call_on_close(wire.close)
        budget = _budgets[client] = ConnectionBudget(client.connections, wire)
    return budget
