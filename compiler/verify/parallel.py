"""Verification units in forked worker processes: the machine's cores, the same results.

A *unit* is a piece of one policy's verification that needs only what was computed before
the split (every handler's encoding, the proved invariants): one handler's checks, one
policy-wide check.  Units never see each other's work: each runs in a child process forked
from the same parent state, so its Z3 queries meet the same terms (Z3 numbers terms, and its
search follows the numbers), in the same order, with the same resource counts, whether it
runs first or last, alone (``jobs=1``) or next to seven others.  That is why any free worker
may take the next unit: the order units *run* in cannot change what they find, and the
results are put together in the canonical order (:mod:`.pipeline`), never in the order they
finish.  ``--jobs 1`` forks too, one unit at a time, so it gives byte-identical results.

Python's collector could break this: a collection frees cyclic garbage, and with it Z3 terms
whose numbers Z3 then reuses, at a point that depends on how many objects were allocated
before - in the parent, that depends on how many results had come back when a child was
forked.  So :func:`settled` starts a run from a canonical collector state, the parent
freezes its objects before forking (its own garbage is then never collected while children
are forked from it), and every child starts from a canonical state again (:func:`_child`).

Several policies (``charter verify DIR``) are units too, one child each, and each of those
forks its own units: :func:`workers` shares ``jobs`` tokens between every process of the
run (a pipe holding one byte per free worker, as ``make`` does), so the whole tree never runs
more than ``jobs`` at once.  A process that waits for its children lends its own token to
the first of them.

A child that dies (a signal, the out-of-memory killer, an exit without a result) or whose
unit raises becomes an :class:`Outcome` with an ``error`` that names the unit, never a hang
or a traceback.  Each child of the top process leads a process group holding everything it
forks, so Ctrl-C in the parent kills the whole tree (``killpg``) and is re-raised.  Without
``os.fork`` (Windows) units run in this process, one after another (``jobs`` is ignored).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import selectors
import signal
import sys
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import attrs

from .solver import Stats, stats

CAN_FORK = hasattr(os, "fork")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), the default ``--jobs``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@attrs.frozen
class Unit:
    """One independent piece of work; ``run`` returns plain (picklable) data."""

    name: str  # for messages: "handler pay", "the authority check"
    run: Callable[[], Any]
    cost: float = 0.0  # a deterministic estimate: larger units are started first


@attrs.define
class Outcome:
    """What a unit gave: its ``value``, or ``error`` saying why there is none; ``stats``: the
    unit's own queries and resources (``rlimit_max`` is the run's maximum so far)."""

    value: Any = None
    stats: Stats = attrs.Factory(Stats)
    error: str = ""
    cpu: float = 0.0  # CPU seconds the unit's process used (user + system)


@contextlib.contextmanager
def settled() -> Iterator[None]:
    """A canonical collector state for a verification run, undone at its end.

    Every object alive now is frozen (never collected during the run, so no earlier garbage
    is freed at a load-dependent moment) and the collector's counters start from zero, so
    when collections happen during the run depends on the run alone, not on what the
    process did before it."""
    gc.freeze()
    gc.collect()  # collects nothing (all frozen); resets the generation counters
    try:
        yield
    finally:
        gc.unfreeze()


class _Tokens:
    """The run's free workers beyond each process's own: one byte each in a pipe."""

    def __init__(self, jobs: int):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.write(self.w, b"+" * max(0, jobs - 1))
        self.jobs = jobs

    def take(self) -> bool:
        try:
            return os.read(self.r, 1) == b"+"
        except BlockingIOError:
            return False

    def give(self) -> None:
        os.write(self.w, b"+")

    def close(self) -> None:
        for fd in (self.r, self.w):
            with contextlib.suppress(OSError):
                os.close(fd)


_TOKENS: Optional[_Tokens] = None  # the run's shared workers (inherited by every child)
_IN_CHILD = False  # this process is a worker: its children join its process group


@contextlib.contextmanager
def workers(jobs: int) -> Iterator[None]:
    """Within this block every :func:`run_units` of this process and of its children shares
    ``jobs`` workers (nested: several policies, each with its units)."""
    global _TOKENS
    if _TOKENS is not None or not CAN_FORK:
        yield
        return
    _TOKENS = _Tokens(max(1, jobs))
    try:
        yield
    finally:
        _TOKENS.close()
        _TOKENS = None


def run_units(units: Sequence[Unit], jobs: Optional[int]) -> list[Outcome]:
    """Every unit's outcome, in the order of ``units`` (whatever order they ran in).

    ``jobs``: how many children run at once (within :func:`workers`, the run's shared
    workers decide, ``jobs`` only caps them); ``None`` (or no ``os.fork``) runs every unit in
    this process, one after another, each seeing what the earlier ones left in Z3 - the
    resource counts, and so rarely a verdict near the limit, can then differ from a forked
    run.  Forked units' statistics are added to this process's :func:`stats`."""
    if jobs is None or not CAN_FORK:
        return [_in_process(u) for u in units]
    return _forked(units, max(1, jobs))


def _in_process(u: Unit) -> Outcome:
    mark = _mark()
    c0 = time.process_time()
    value = u.run()
    return Outcome(value, _since(mark), cpu=time.process_time() - c0)


def _mark() -> tuple[Stats, Stats]:
    return stats(), attrs.evolve(stats())


def _since(mark: tuple[Stats, Stats]) -> Stats:
    """What the queries since ``mark`` cost (a unit that started a run of its own - a whole
    policy, :func:`.solver.fresh_context` - cost all of that run's)."""
    now = stats()
    return _delta(mark[1], now) if now is mark[0] else attrs.evolve(now)


def _delta(before: Stats, after: Stats) -> Stats:
    return Stats(
        queries=after.queries - before.queries,
        rlimit_used=after.rlimit_used - before.rlimit_used,
        rlimit_max=after.rlimit_max,
        at_limit=after.at_limit - before.at_limit,
        safety_net=after.safety_net - before.safety_net,
        seconds=after.seconds - before.seconds,
    )


def _add(into: Stats, d: Stats) -> None:
    into.queries += d.queries
    into.rlimit_used += d.rlimit_used
    into.rlimit_max = max(into.rlimit_max, d.rlimit_max)
    into.at_limit += d.at_limit
    into.safety_net += d.safety_net
    into.seconds += d.seconds


def _forked(units: Sequence[Unit], jobs: int) -> list[Outcome]:
    # largest first (a stable, deterministic order): the long units do not end up last
    todo = sorted(range(len(units)), key=lambda i: (-units[i].cost, i))
    todo.reverse()
    out: list[Optional[Outcome]] = [None] * len(units)
    running: dict[int, tuple[int, int, list[bytes]]] = {}  # fd -> (pid, unit index, data)
    tokens = _TOKENS
    held = 0  # shared tokens taken: children running = held + 1 (this process lends its own)
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()  # what exists now is what every child starts from; never collected here
    sel = selectors.DefaultSelector()
    watching = False  # the shared tokens' pipe is in the selector
    try:
        while todo or running:
            while todo and len(running) < jobs:
                if running:
                    if tokens is None or not tokens.take():
                        break
                    held += 1
                i = todo.pop()
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
                    os.close(r)
                    _child(units[i], w)
                os.close(w)
                if not _IN_CHILD:  # (the child does too: whichever runs first, it holds)
                    with contextlib.suppress(OSError):
                        os.setpgid(pid, pid)
                running[r] = (pid, i, [])
                sel.register(r, selectors.EVENT_READ)
            want = tokens is not None and bool(todo) and len(running) < jobs
            if want != watching:  # wake up when another process frees a worker
                if want:
                    sel.register(tokens.r, selectors.EVENT_READ)
                else:
                    sel.unregister(tokens.r)
                watching = want
            for key, _ in sel.select():
                fd = key.fd
                if fd not in running:
                    continue  # the tokens' pipe: the loop above tries to take one
                data = os.read(fd, 1 << 20)
                if data:
                    running[fd][2].append(data)
                    continue
                sel.unregister(fd)
                os.close(fd)
                pid, i, chunks = running.pop(fd)
                _, status, usage = os.wait4(pid, 0)
                out[i] = _decode(units[i], b"".join(chunks), status)
                out[i].cpu = usage.ru_utime + usage.ru_stime
                _add(stats(), out[i].stats)
                if held:
                    tokens.give()
                    held -= 1
    except BaseException:  # Ctrl-C (or anything else): no child, nor anything it forked, lives on
        for fd, (pid, _, _) in running.items():
            with contextlib.suppress(OSError):
                if _IN_CHILD:
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.close(fd)
        for _ in range(held):
            with contextlib.suppress(OSError):
                tokens.give()
        raise
    finally:
        sel.close()
    return [o for o in out if o is not None]


def _child(u: Unit, w: int) -> None:  # pragma: no cover - runs in the child
    """Run ``u`` and write its pickled outcome to ``w``; never returns."""
    global _IN_CHILD
    code = 0
    try:
        if not _IN_CHILD:  # a group of its own, for everything it forks: the parent kills it
            os.setpgid(0, 0)
        _IN_CHILD = True
        # Ctrl-C: the parent (in the terminal's group) kills the children's groups
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        gc.freeze()
        gc.collect()  # the canonical collector state, whatever the parent did before forking
        mark = _mark()
        try:
            value = u.run()
            data = pickle.dumps((True, value, _since(mark)), pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as data
            data = pickle.dumps((False, f"{type(exc).__name__}: {exc}", None))
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]
    except BaseException:  # noqa: BLE001 - a result that cannot be sent: the parent says so
        code = 70
    finally:
        os._exit(code)


def _decode(u: Unit, data: bytes, status: int) -> Outcome:
    who = f"the worker process verifying {u.name}"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        hint = " (out of memory?)" if sig == signal.SIGKILL else ""
        return Outcome(error=f"{who} was killed by {name}{hint}")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    if code != 0 or not data:
        return Outcome(error=f"{who} ended (exit status {code}) without a result")
    try:
        ok, value, st = pickle.loads(data)
    except Exception as exc:  # noqa: BLE001 - a garbled result is an error, not a traceback
        return Outcome(error=f"{who} sent a result that cannot be read ({exc})")
    if not ok:
        return Outcome(error=f"{who} failed: {value}")
    return Outcome(value, st)
