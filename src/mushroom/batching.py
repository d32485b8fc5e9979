"""Adaptive batching without the learned cork wait (BentoML 1.4.40, pinned).

BentoML's CorkDispatcher holds a request back ("corks") for up to the average wait of the
last 50 batches, hoping for company. That average includes time spent queued behind a
batch that was still running, so after a burst it is large, and lone requests corked
for it log the same wait again: it sustains itself. Measured here, a 1,000-mushroom
request took 28 ms on a fresh server and 98 ms after 5 s at concurrency 64.

With the learned wait pinned to zero a batch is dispatched as soon as the model is free,
holding every request that arrived while the previous batch ran: concurrent requests
still share one model call, and a lone request never waits for company.
"""

from __future__ import annotations

from bentoml._internal.marshal.dispatcher import Optimizer

_learned_refresh = Optimizer.trigger_refresh


def _refresh_without_cork_wait(self: Optimizer) -> None:
    _learned_refresh(self)  # keeps the latency model BentoML uses to shed overload
    self.wait = 0


def dispatch_when_free() -> None:
    Optimizer.trigger_refresh = _refresh_without_cork_wait
