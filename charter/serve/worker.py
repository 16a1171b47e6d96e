"""The one thread that owns the runtime: every call is serialised on it, events group-committed.

A :class:`~charter.runtime.engine.Runtime` is single-threaded (and a SQLite
connection belongs to the thread that opened it), so the server never
touches it from the event loop: requests queue jobs here and await them.
Submissions that queue up while a commit is in progress are settled
together and committed in one transaction (``submit_batch``: each event
still applies or is rejected on its own); only after that commit returns
are their futures resolved, so an HTTP client is never told an event
applied before it is durable.  That is what makes ``kill -9`` lose no
acknowledged event.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any, Callable, Optional

_STOP = object()


class Busy(Exception):
    """The worker is stopping (shutdown) or its store failed."""


class RuntimeWorker:
    def __init__(self, open_runtime: Callable[[], Any], max_group: int = 256):
        self._open = open_runtime
        self.max_group = max_group
        self._q: "queue.Queue[Any]" = queue.Queue()
        self._ready = threading.Event()
        self.error: Optional[BaseException] = None
        self.rt: Any = None
        self.stopping = False
        self.groups = 0
        self.events = 0
        self._thread = threading.Thread(target=self._main, name="charter-runtime", daemon=True)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = 30.0) -> None:
        """Finish queued jobs, flush and close the runtime."""
        self.stopping = True
        self._q.put(_STOP)
        self._thread.join(timeout)

    # ---------------------------------------------------------------- calls

    async def submit(self, event: Any) -> Any:
        return await self._call(("submit", event))

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(runtime)`` on the runtime's thread (queries, audits, key changes)."""
        return await self._call(("call", fn))

    async def _call(self, job: tuple) -> Any:
        if self.stopping:
            raise Busy("the server is shutting down")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._q.put((job, loop, fut))
        return await fut

    # ---------------------------------------------------------------- the thread

    def _main(self) -> None:
        try:
            self.rt = self._open()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        held = None  # a job taken while gathering a group, handled next (order kept)
        try:
            while True:
                item = held if held is not None else self._q.get()
                held = None
                if item is _STOP:
                    break
                if item[0][0] != "submit":
                    self._one(item)
                    continue
                group = [item]
                # every submission already waiting joins this one commit
                while len(group) < self.max_group:
                    try:
                        nxt = self._q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP or nxt[0][0] != "submit":
                        held = nxt
                        break
                    group.append(nxt)
                self._settle(group)
        finally:
            self._drain()
            try:
                self.rt.close()
            except Exception:  # noqa: BLE001 - closing a failed store: nothing more to save
                pass

    def _settle(self, group: list) -> None:
        events = [job[1] for job, _, _ in group]
        try:
            if len(events) == 1:
                outs = [self.rt.submit(events[0])]
                self.rt.flush()
            else:
                outs = self.rt.submit_batch(events)
        except BaseException as exc:  # noqa: BLE001 - nothing of the group is acknowledged
            for _, loop, fut in group:
                loop.call_soon_threadsafe(_fail, fut, exc)
            return
        self.groups += 1
        self.events += len(events)
        for (_, loop, fut), out in zip(group, outs):
            loop.call_soon_threadsafe(_done, fut, out)

    def _one(self, item: Any) -> None:
        (kind, fn), loop, fut = item
        try:
            out = fn(self.rt)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
            loop.call_soon_threadsafe(_fail, fut, exc)
        else:
            loop.call_soon_threadsafe(_done, fut, out)

    def _drain(self) -> None:
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                continue
            _, loop, fut = item
            loop.call_soon_threadsafe(_fail, fut, Busy("the server is shutting down"))


def _done(fut: "asyncio.Future[Any]", value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _fail(fut: "asyncio.Future[Any]", exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def monotonic_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
