"""`charter run`, `charter ledger`, `charter audit`, `charter replay`, `charter test`.

A ledger file (SQLite) records the policy it was started with (IR,
fingerprint, parameters), so ``ledger``, ``audit`` and ``replay`` need only
the file; ``--policy`` makes them compile a source instead (it must be the
same policy).  Exit codes: 0 ok, 1 failures (audit/replay mismatch, failed
tests, policy errors, rejected events with ``--strict``), 2 usage or I/O
errors.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import click

from charter.compiler import ir
from charter.compiler.diagnostics import CharterError, render_text
from charter.runtime.values import PolicyNotExecutable


def _fail(msg: str, code: int = 2) -> None:
    click.echo(f"charter: {msg}", err=True)
    sys.exit(code)


def _compile(path: str) -> ir.Policy:
    from charter.compiler.pipeline import Compilation

    if not Path(path).is_file():
        _fail(f"{path}: no such policy file")
    try:
        return Compilation.from_path(path).ir
    except CharterError as exc:
        click.echo(render_text(exc.diagnostics, exc.sources), err=True)
        sys.exit(1)


def _param_overrides(policy: ir.Policy, items: Iterable[str]) -> dict[str, Any]:
    """``--param k=v``: read by the one convention of :mod:`charter.compiler.units`
    (``2.50`` is 2.50 of the asset, ``3%``, ``2 days``), range-checked in the same units."""
    from charter.compiler import display, units
    from charter.compiler.diagnostics import did_you_mean

    out: dict[str, Any] = {}
    dec = ir.AssetMap((a.name, a.decimals) for a in policy.assets)
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--param")
        name, text = (s.strip() for s in item.split("=", 1))
        try:
            p = policy.param(name)
        except StopIteration:
            known = ", ".join(p.name for p in policy.params) or "none"
            hint = did_you_mean(name, [p.name for p in policy.params])
            raise click.BadParameter(
                f"unknown parameter {name!r}" + (f"; {hint}" if hint else "")
                + f" (parameters: {known})", param_hint="--param"
            ) from None
        t = p.type
        v: Any
        try:
            if units.is_numeric(t):
                v = units.read(t, text, lambda a: dec.get(a, 0), text=True)
            elif isinstance(t, ir.TBool):
                v = {"true": True, "false": False}.get(text)
                if v is None:
                    raise units.UnitError("expected true or false")
            else:
                v = text  # a party id: the runtime makes it canonical (no '@'), as for the API
        except units.UnitError as err:
            raise click.BadParameter(f"{name}: cannot read {text!r}: {err}",
                                     param_hint="--param") from None
        for bound, word in ((p.lo, "below the minimum"), (p.hi, "above the maximum")):
            if bound is not None and (v < bound if word.startswith("below") else v > bound):
                shown = display.value(v, t, policy)
                said = f"{name}={text} is " + (f"{shown}, " if shown != text else "")
                raise click.BadParameter(
                    f"{said}{word} {display.value(bound, t, policy)} (declared range "
                    f"{display.value_range(p.lo, p.hi, t, policy)})", param_hint="--param")
        out[name] = v
    return out


def _fmt_amount(v: int, decimals: int) -> str:
    # every ledger command prints amounts in asset units (`500.00`); --json keeps minor units
    from charter.compiler.display import amount_number

    return amount_number(v, decimals)


def _balance_rows(rt: Any, include_supply: bool = True,
                  balances: Optional[dict[str, int]] = None) -> list[tuple[str, str, int, str]]:
    dec = ir.AssetMap((a.name, a.decimals) for a in rt.policy.assets)
    rows = []
    for acc, bal in (rt.balances() if balances is None else balances).items():
        asset = rt.state.asset_of(acc)
        if acc.startswith("supply:"):
            if not include_supply:
                continue
            acc = f"supply:{asset} (minted)"
            bal = -bal
        rows.append((acc, asset, bal, _fmt_amount(bal, dec.get(asset, 0))))
    return rows


def _print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    click.echo("  ".join("-" * w for w in widths))
    for r in rows:
        click.echo(
            "  ".join(
                str(c).rjust(w) if i == len(r) - 1 else str(c).ljust(w)
                for i, (c, w) in enumerate(zip(r, widths))
            )
        )


def _ledger_arg(db: str, must_exist: bool) -> tuple[str, str, Optional[str]]:
    """A DB argument or --db: (what to open, how messages name it (no password), the
    schema of a PostgreSQL ledger); exits with a clear message on a bad path or URL."""
    from charter.runtime.store import StoreError
    from charter.runtime.store_url import parse

    try:
        spec = parse(db)
    except StoreError as exc:
        _fail(str(exc))
    if spec.kind == "sqlite":
        if must_exist and not Path(spec.target).is_file():
            _fail(f"{spec.shown}: no such ledger file")
        return spec.target, spec.shown, None
    return db, spec.shown, spec.schema


def _store_errors(fn: Any) -> Any:
    """A ledger command: a store error met while it reads (a damaged row, a file that
    vanished) is reported like one met when opening, never as a traceback."""
    import functools

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        from charter.runtime.store import StoreError

        try:
            return fn(*args, **kwargs)
        except StoreError as exc:
            _fail(str(exc))

    return run


def _open_ledger(
    db: str, policy: Optional[str], state: bool = True, check_state: bool = True
) -> Any:
    """A read-only runtime on a ledger; ``state=False`` loads no state (the commands that
    read stored rows and the journal only: memory does not grow with the ledger);
    ``check_state=False`` also leaves the state digest out of the open-time check (the
    commands that read the journal alone: their cost does not grow with the ledger)."""
    from charter.runtime.api import open_runtime
    from charter.runtime.store import StoreError

    db, shown, _ = _ledger_arg(db, must_exist=True)
    pol = _compile(policy) if policy else None
    try:
        # read-only: no writer lock (works while `charter run` writes), nothing refused
        rt = open_runtime(pol, db, readonly=True, load_state=state, check_state=check_state)
    except StoreError as exc:
        _fail(str(exc))
    except PolicyNotExecutable as exc:
        _fail(f"{shown}: this runtime cannot execute the policy: {exc}", 1)
    # closed when the command ends, however it ends: run in-process (an embedder, a test
    # runner), a reader left open on a file in rollback-journal mode (journal_mode changed
    # by another tool) holds its read lock and every later writer is refused as locked
    click.get_current_context().call_on_close(rt.store.close)
    problems = getattr(rt.store, "integrity_problems", ())
    if problems:
        click.echo(
            f"charter: warning: {shown} fails its integrity check ({problems[0]}); "
            f"`charter audit {shown}` for the full report",
            err=True,
        )
    return rt


class _Unreadable(str):
    """A line that holds no JSON value: why, worded for the rejections file.  Its own type,
    so a line holding a JSON string (valid JSON, not an event) is not mistaken for one."""


_CHUNK = 1 << 16  # bytes of lines read at a time: one read call per ~600 events


def _read_events(path: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON or an :class:`_Unreadable`) for each non-blank line.

    A line that is not UTF-8, not JSON, nested too deeply or holding a number
    of more than 4,300 digits is unreadable (the run goes on).

    msgspec reads each line (bytes in, ~5x faster than ``json.loads``; the same
    values for every line it accepts: exact integers, correctly rounded floats,
    the last of duplicate keys); a line it refuses is read again by the standard
    library, which accepts what JSON's Python reading accepts (``NaN``, lone
    surrogate escapes, ``1e400``) and words every error as before.  Lines are
    read a chunk at a time and each is decoded on its own: an error stays on
    its line."""
    from msgspec.json import Decoder

    fast = Decoder().decode
    n = 0
    with open(path, "rb") as fh:
        while True:
            lines = fh.readlines(_CHUNK)
            if not lines:
                return
            for raw in lines:
                n += 1
                try:
                    ev = fast(raw)
                except Exception:  # noqa: BLE001 - read again below, which words the error
                    if not raw.strip():
                        continue
                    ev = _read_again(raw, n)
                yield n, ev


def _read_again(raw: bytes, n: int) -> Any:
    """Line ``n``, which msgspec refused, read by the standard library: its value, or why
    it is unreadable."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Unreadable(f"line {n} is not valid UTF-8 (byte {exc.start + 1})")
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return _Unreadable(f"line {n} is not valid JSON ({exc.msg} at column {exc.colno})")
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        return _Unreadable(f"line {n} is not acceptable JSON ({str(exc)[:120]})")
    except RecursionError:
        return _Unreadable(f"line {n} is nested too deeply to be an event")


def _count_timer_failures(timers: Any, ev: dict, failed: dict[tuple, dict]) -> None:
    """Count the rejected firings among an applied event's timers, by handler and reason
    (with the first event before which each happened)."""
    for t in timers:
        if t.get("status") == "rejected":
            key = (str(t.get("handler")), str(t.get("reason")))
            failed.setdefault(
                key, {"handler": key[0], "reason": key[1], "event_id": ev.get("id"), "count": 0}
            )["count"] += 1


@contextlib.contextmanager
def _settling_gc() -> Iterator[None]:
    """The cycle collector tuned for a long run of events, restored after.

    What start-up made (modules, the compiled policy and handlers) lives as long as the
    run: frozen, the collector's full passes do not walk it again.  Settling an event
    makes few reference cycles but keeps what it applies (records, journal rows), so the
    default young-generation pass every 700 net allocations, and the older passes it
    triggers, kept re-walking a growing heap: ~0.55 s CPU of collection in 435,000 gig
    events (3%), ~0.08 s with a young pass every 10,000 (-2.1% instructions over 50,000).
    Cyclic garbage then waits at most 10,000 allocations instead of 700."""
    import gc

    saved = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


def _printable(text: str) -> str:
    """``text`` with lone surrogates escaped: a finding may quote a hostile stored value
    (``"\\ud800"`` in a balance row), and writing one to stdout raised UnicodeEncodeError."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _jsonl(rec: dict[str, Any]) -> str:
    """One rejections-file line: UTF-8 as written, lone surrogates escaped (never a crash)."""
    text = json.dumps(rec, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(rec, ensure_ascii=True)
    return text


def _resume_line(path: str, applied: set[str]) -> int:
    """The last line of ``path`` whose event an earlier run applied (0 if none).

    An id counts at its first occurrence (later ones are duplicates).  A
    resumed run starts after this line, so it does exactly what the
    interrupted run would have done next.
    """
    seen: set[str] = set()
    last = 0
    for n, ev in _read_events(path):
        eid = ev.get("id") if isinstance(ev, dict) else None
        if isinstance(eid, str) and eid not in seen:
            seen.add(eid)
            if eid in applied:
                last = n
    return last


def register(cli: click.Group) -> None:  # noqa: C901 - one place that lists the commands
    @cli.command()
    @click.argument("policy", type=click.Path(dir_okay=False))
    @click.argument("events", type=click.Path(dir_okay=False))
    @click.option(
        "--db",
        default="ledger.sqlite",
        show_default=True,
        help="The ledger (created, or resumed if it exists): a SQLite file path or "
        "sqlite:///PATH, or postgresql://USER@HOST/DB[?schema=NAME] for a ledger that "
        "several processes share.",
    )
    @click.option("--memory", is_flag=True, help="Settle in memory only (no ledger file).")
    @click.option(
        "--batch",
        default=1,
        show_default=True,
        type=click.IntRange(1, None),
        help="Commit every N events in one transaction.",
    )
    @click.option(
        "--rejections",
        "rej_path",
        default=None,
        help="JSON Lines file for rejected events [default: <db>.rejections.jsonl].",
    )
    @click.option(
        "--param",
        "params",
        multiple=True,
        metavar="NAME=VALUE",
        help="Override a parameter (within its declared range); amounts in major units.",
    )
    @click.option(
        "--clock",
        "clock",
        type=click.Choice(["events", "system"]),
        default="events",
        show_default=True,
        help="Time policy: 'events' takes each event's time (trusted files, replay, "
        "simulation); 'system' stamps events with this machine's clock and refuses "
        "times more than --max-skew off (untrusted submitters).",
    )
    @click.option(
        "--max-skew",
        default=300,
        show_default=True,
        type=click.IntRange(0, None),
        help="With --clock system: seconds a submitted time may differ from the clock.",
    )
    @click.option(
        "--step-budget",
        default=None,
        type=click.IntRange(1, None),
        help="Most work one event may do (statements + loop/split items) "
        "[default: 10,000,000].",
    )
    @click.option(
        "--max-timer-firings",
        default=None,
        type=click.IntRange(0, None),
        metavar="N",
        help="Most timed-handler firings one event may make due; an event whose time is "
        "further ahead is refused (timer_overflow) before any fires [default: 1,000].",
    )
    @click.option(
        "--wait",
        default=0.0,
        type=click.FloatRange(0, None),
        metavar="SECONDS",
        help="If another process is writing the ledger, wait up to SECONDS for it to "
        "finish instead of stopping at once.",
    )
    @click.option(
        "--strict",
        is_flag=True,
        help="Exit 1 if any event is rejected (re-sent duplicates are not rejections).",
    )
    @click.option(
        "--check",
        "check_props",
        is_flag=True,
        help="After every applied event, check the policy's declared invariants and the "
        "handler's `ensures` clauses (old(...) read before the event); report the first "
        "event after which each is false (exit 1 if any is).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
    def run(
        policy: str,
        events: str,
        db: str,
        memory: bool,
        batch: int,
        rej_path: Optional[str],
        params: tuple[str, ...],
        clock: str,
        max_skew: int,
        step_budget: Optional[int],
        max_timer_firings: Optional[int],
        wait: float,
        strict: bool,
        check_props: bool,
        as_json: bool,
        quiet: bool,
    ) -> None:
        """Settle EVENTS (JSON Lines) under POLICY into a ledger.

        Resumable: run the same command again after a crash or kill; lines up to
        the last one an earlier run applied are skipped, so it continues with
        the next event.  An event whose id was already applied is a no-op when
        it is the same event (counted as a duplicate) and a rejection
        (id_conflict) when it is a different one.  Each event is its own SQLite
        transaction (fsync'd); --batch 500 is much faster on long files and just
        as safe to resume.

        One writer per ledger: while another process writes the file this stops
        at once (exit 2, naming that process) or, with --wait, waits its turn.
        A ledger that fails its integrity check (edited, truncated, forged) is
        refused with the audit's findings (exit 2) and never appended to.
        """
        from charter.runtime.api import DEFAULT_STEP_BUDGET, open_runtime
        from charter.runtime.engine import ParamError
        from charter.runtime.spill import SpillingStore
        from charter.runtime.store import StoreError

        db_shown, schema = db, None
        if not memory:
            db, db_shown, schema = _ledger_arg(db, must_exist=False)
        pol = _compile(policy)
        if not Path(events).is_file():
            _fail(f"{events}: no such events file")
        overrides = _param_overrides(pol, params)
        try:
            rt = open_runtime(
                pol,
                # in memory: the state's big tables page over a scratch file (spill.py)
                SpillingStore() if memory else db,
                params=overrides or None,
                batch=batch,
                clock=clock,
                max_skew=max_skew,
                step_budget=step_budget or DEFAULT_STEP_BUDGET,
                max_timer_firings=max_timer_firings,
                wait=wait,
            )
        except (StoreError, ParamError) as exc:
            _fail(str(exc))
        except PolicyNotExecutable as exc:
            _fail(f"this runtime cannot execute the policy: {exc}", 1)
        if rej_path is None and not memory:
            # next to a ledger file; for a database ledger, in the working directory
            rej_path = (schema or db) + ".rejections.jsonl"
        bar_wanted = not quiet and not as_json
        try:
            with open(events, "rb") as fh:  # readable; counted only for the progress bar
                total = sum(1 for line in fh if line.strip()) if bar_wanted else 0
        except OSError as exc:
            _fail(f"{events}: cannot read ({exc})")
        applied = skipped = ticks = duplicates = 0
        resume_at = _resume_line(events, rt.applied_ids) if rt.seq else 0
        reasons: Counter[tuple[str, str]] = Counter()
        broken: dict[tuple, dict] = {}  # (property, record) -> where it first failed
        # timed handlers whose firing was rejected (the event that fired them applied)
        timer_failed: dict[tuple, dict] = {}
        post = None
        if check_props:
            from charter.runtime.monitor import Postconditions, violations

            post = Postconditions(rt)
        rej_file = open(rej_path, "w", encoding="utf-8") if rej_path else None
        started = time.perf_counter()
        show = bar_wanted and total >= 1000
        try:
            with (
                click.progressbar(length=total, label="settling", file=sys.stderr, show_pos=True)
                if show
                else _NoBar() as bar,
                _settling_gc(),
            ):
                submit = rt.submit
                for n, ev in _read_events(events):
                    if show:
                        bar.update(1)
                    if n <= resume_at:
                        # processed by an earlier run (applied, or rejected before the last
                        # applied line): re-evaluating it against later state could differ
                        skipped += 1
                        continue
                    if type(ev) is _Unreadable:
                        code, message = "bad_json", str(ev)
                        rec = {"line": n, "event_id": None, "code": code, "message": message}
                    else:
                        pending = post.before(ev) if post is not None else None
                        out = submit(ev)
                        if out.applied:
                            if out.duplicate:
                                duplicates += 1  # the same event again: a no-op
                                continue
                            applied += 1
                            if out.timers:
                                ticks += 1
                                _count_timer_failures(out.timers, ev, timer_failed)
                            if post is not None:
                                for v in violations(rt) + post.after(pending, out):
                                    key = (v["property"], v["record"])
                                    if key not in broken:
                                        broken[key] = {**v, "line": n, "event_id": ev.get("id")}
                            continue
                        code, message = out.code, out.message
                        rec = None
                    reasons[(code, message)] += 1
                    if rej_file:
                        if rec is None:
                            rec = {"line": n, **out.to_dict()}
                            rec.pop("applied", None)
                        rej_file.write(_jsonl(rec) + "\n")
            # read before closing: a ledger file's state may page from the file (paged.py)
            final = rt.balances()
            rt.close()
        except KeyboardInterrupt:
            rt.close()
            click.echo(
                "interrupted: everything applied so far is committed; run again to resume", err=True
            )
            sys.exit(130)
        except StoreError as exc:
            _fail(f"ledger write failed: {exc}")
        finally:
            if rej_file:
                rej_file.close()
        elapsed = time.perf_counter() - started
        rejected = sum(reasons.values())
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "applied": applied,
                        "duplicates": duplicates,
                        "skipped": skipped,
                        "resumed_after_line": resume_at,
                        "rejected": rejected,
                        "events_that_fired_timers": ticks,
                        "timer_failures": list(timer_failed.values()),
                        "reasons": [
                            {"code": c, "message": m, "count": k}
                            for (c, m), k in reasons.most_common()
                        ],
                        "balances": final,
                        "journal_hash": rt.head,
                        "violations": list(broken.values()) if check_props else None,
                        "ensures_unchecked": post.unchecked if post is not None else None,
                        "ledger": None if memory else db_shown,
                        "rejections": rej_path,
                    },
                    indent=2,
                )
            )
        else:
            where = "in memory" if memory else db_shown
            click.echo(
                f"settled {events} under {pol.name} {pol.version} into {where} in {elapsed:.2f}s"
            )
            click.echo(f"  applied:          {applied}")
            if ticks:
                click.echo(f"  fired timers:     {ticks} event(s) (timed handlers due before them)")
            for t in timer_failed.values():
                click.echo(
                    f"    timed handler {t['handler']} rejected {t['count']}x, first before "
                    f"event {t['event_id']}: {t['reason']}"
                )
            if duplicates:
                click.echo(
                    f"  duplicates:       {duplicates} (same id and content as an applied "
                    "event: nothing done)"
                )
            if resume_at:
                click.echo(f"  resumed after line {resume_at} (processed by an earlier run)")
            if skipped:
                click.echo(f"  skipped:          {skipped} (lines processed by an earlier run)")
            click.echo(f"  rejected:         {rejected}")
            for (code, msg), k in reasons.most_common(15):
                click.echo(f"    {k:6d}  {code}: {msg}")
            if len(reasons) > 15:
                click.echo(f"    ... {len(reasons) - 15} more reasons")
            if rejected and rej_path:
                click.echo(f"  rejections written to {rej_path}")
            click.echo("")
            rows = _balance_rows(rt, balances=final)
            if rows:
                _print_table([(a, s, f) for a, s, _, f in rows], ("account", "asset", "balance"))
            click.echo(f"\njournal head {rt.head}")
            if check_props:
                if not broken:
                    click.echo(
                        "declared invariants and ensures clauses: all hold after every "
                        "applied event"
                    )
                for v in broken.values():
                    rec = f" for {v['record']}" if v["record"] else ""
                    what = "postcondition" if ".ensures." in v["property"] else "property"
                    said = f' ("{v["message"]}")' if v.get("message") else ""
                    click.echo(
                        f"VIOLATED {what} {v['property']}{said}{rec}: false after event "
                        f"{v['event_id']} (line {v['line']})"
                    )
                if post is not None and post.unchecked:
                    click.echo(
                        f"ensures not checked after {post.unchecked} event(s) that fired timed "
                        "handlers first (old(...) was read before those ran)"
                    )
        from charter.cli import finish

        # everything is written: the summary, the rejections file (closed), the ledger (closed)
        finish(1 if (strict and rejected) or broken else 0)

    @cli.group()
    def ledger() -> None:
        """Inspect a ledger file: balances, accounts, history, records."""

    @ledger.command("balances")
    @click.argument("db")
    @click.option("--policy", default=None, help="Compile this policy instead of the recorded one.")
    @click.option("--json", "as_json", is_flag=True)
    @_store_errors
    def ledger_balances(db: str, policy: Optional[str], as_json: bool) -> None:
        """Non-zero balances of every account (supply shown as minted)."""
        rt = _open_ledger(db, policy, state=False)
        if as_json:
            click.echo(json.dumps(rt.balances(), indent=2))
            return
        rows = _balance_rows(rt)
        if not rows:
            click.echo("(no balances)")
            return
        _print_table([(a, s, f) for a, s, _, f in rows], ("account", "asset", "balance"))

    @ledger.command("accounts")
    @click.argument("db")
    @click.option("--policy", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @_store_errors
    def ledger_accounts(db: str, policy: Optional[str], as_json: bool) -> None:
        """Every account ever posted to, with its kind and asset."""
        rt = _open_ledger(db, policy, state=False)
        accs = [
            {"account": a, "kind": a.split(":", 1)[0], "asset": rt.state.asset_of(a), "balance": b}
            for a, b in rt.balances(include_zero=True).items()
        ]
        if as_json:
            click.echo(json.dumps(accs, indent=2))
            return
        dec = ir.AssetMap((a.name, a.decimals) for a in rt.policy.assets)
        _print_table(
            [
                (x["account"], x["kind"], x["asset"],
                 _fmt_amount(x["balance"], dec.get(x["asset"], 0)))
                for x in accs
            ],
            ("account", "kind", "asset", "balance"),
        )

    @ledger.command("history")
    @click.argument("db")
    @click.option("--account", default=None, help="Only entries that post to this account.")
    @click.option("--limit", default=0, type=int, help="Only the last N entries.")
    @click.option("--policy", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @_store_errors
    def ledger_history(
        db: str, account: Optional[str], limit: int, policy: Optional[str], as_json: bool
    ) -> None:
        """Journal entries (event, postings, hash), oldest first."""
        # the journal alone: the state rows are neither read nor digested
        rt = _open_ledger(db, policy, state=False, check_state=False)
        # with --limit the newest entries are read newest first (the sequence index): the
        # cost follows N, not the ledger's length
        hist = rt.history(account, limit=max(limit, 0))
        rt.close()
        if as_json:
            click.echo(json.dumps(hist, indent=2))
            return
        dec = ir.AssetMap((a.name, a.decimals) for a in rt.policy.assets)
        for h in hist:
            ev = h["event"]
            click.echo(
                f"#{h['seq']} t={ev['time']} {ev['type']} {ev['id']} by {ev['submitter']} "
                f"[{h['hash'][:12]}]"
            )
            for t in h["timers"]:
                click.echo(
                    f"    timer {t['handler']} due {t['due']}"
                    + (f" ({t['key']})" if t.get("key") else "")
                    + f": {t['status']}"
                )
            for p in h["postings"]:
                click.echo(
                    f"    {p['kind']:>9} {_fmt_amount(p['amount'], dec.get(p['asset'], 0)):>12} "
                    f"{p['asset']:<10} "
                    f"{p['from']} -> {p['to']}"
                )
            for f in h.get("flags") or ():
                click.echo(f"         flag {f.get('party')}: {f.get('message')}")

    @ledger.command("export")
    @click.argument("db")
    @click.option("--format", "fmt", type=click.Choice(["beancount", "csv", "jsonl", "parquet"]),
                  default="jsonl", show_default=True)
    @click.option("-o", "--output", default="-", help="File to write [default: stdout].")
    @click.option("--policy", default=None)
    @_store_errors
    def ledger_export(db: str, fmt: str, output: str, policy: Optional[str]) -> None:
        """Write the journal as Beancount, CSV or Parquet (one row per posting) or JSON Lines.

        Beancount: accounts Assets:Parties/Pools/Escrow/Stakes and Equity:Supply, assets as
        upper-case commodities, event id/seq/time/hash as metadata, and a balance assertion
        per account from the ledger's balances (bean-check proves they agree)."""
        from charter.runtime.export import ExportError, export

        if fmt == "parquet" and output == "-":
            _fail("--format parquet writes a file: give -o FILE")
        rt = _open_ledger(db, policy, state=False)
        dec = ir.AssetMap((a.name, a.decimals) for a in rt.policy.assets)
        if fmt == "parquet":
            try:
                n = export(rt.journal_rows(), fmt, output, dec, {})
            except (ExportError, OSError) as exc:
                _fail(str(exc))
            finally:
                rt.close()
            click.echo(f"wrote {n} journal entries as parquet to {output}", err=True)
            return
        try:
            fh = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")
        except OSError as exc:
            _fail(f"{output}: cannot write ({exc.strerror})")
        try:
            n = export(rt.journal_rows(), fmt, fh, dec, rt.balances(include_zero=True))
        except ExportError as exc:
            _fail(str(exc))
        finally:
            if fh is not sys.stdout:
                fh.close()
            rt.close()
        if output != "-":
            click.echo(f"wrote {n} journal entries as {fmt} to {output}", err=True)

    @ledger.command("migrate")
    @click.argument("db")
    @click.option("--json", "as_json", is_flag=True)
    def ledger_migrate(db: str, as_json: bool) -> None:
        """Rewrite a ledger of an older schema version as the current one.

        The old ledger is verified first (policy, whole hash chain, balances, checkpoint) and
        refused if it fails; the journal hashes do not change.  A file: the old one is kept
        beside it as DB.v<N>.bak.  A PostgreSQL URL: the index is added in one transaction
        holding the ledger's lock.  Nothing is done to a ledger already current."""
        from charter.runtime.store import StoreError

        target, shown, schema = _ledger_arg(db, must_exist=True)
        try:
            if schema is None:
                from charter.runtime.sqlite_store import migrate

                out = migrate(target)
            else:
                from charter.runtime.postgres_store import migrate as migrate_pg
                from charter.runtime.store_url import parse

                spec = parse(db)
                out = migrate_pg(spec.target, schema=schema, where=shown, secret=spec.secret)
        except StoreError as exc:
            _fail(str(exc))
        db = shown
        if as_json:
            click.echo(json.dumps(out, indent=2))
        elif not out["migrated"]:
            click.echo(f"{db}: already version {out['to']}")
        else:
            click.echo(
                f"{db}: migrated schema version {out['from']} -> {out['to']}, "
                f"{out['entries']} entries verified, journal head {out['head']} unchanged"
            )
            if out.get("backup"):
                click.echo(f"  the old file is kept as {out['backup']}")
            else:
                click.echo(f"  per-account index added ({out['index_rows']} rows)")

    @ledger.command("records")
    @click.argument("db")
    @click.argument("record")
    @click.option("--policy", default=None)
    @_store_errors
    def ledger_records(db: str, record: str, policy: Optional[str]) -> None:
        """Live records of one kind, as JSON."""
        from charter.runtime.values import to_json_value

        rt = _open_ledger(db, policy)
        if record not in rt.state.records:
            _fail(
                f"no record kind {record!r} "
                f"(records: {', '.join(sorted(rt.state.records)) or 'none'})"
            )
        click.echo(json.dumps(to_json_value(rt.records(record)), indent=2))

    @ledger.command("members")
    @click.argument("db")
    @click.argument("role")
    @click.option("--policy", default=None)
    @_store_errors
    def ledger_members(db: str, role: str, policy: Optional[str]) -> None:
        """Members of one role and their attributes, as JSON."""
        from charter.runtime.values import to_json_value

        rt = _open_ledger(db, policy)
        if role not in rt.state.roles:
            _fail(f"no role {role!r} (roles: {', '.join(sorted(rt.state.roles)) or 'none'})")
        click.echo(json.dumps(to_json_value(rt.members(role)), indent=2))

    @cli.command()
    @click.argument("db")
    @click.option("--policy", default=None, help="Compile this policy instead of the recorded one.")
    @click.option("--json", "as_json", is_flag=True)
    @_store_errors
    def audit(db: str, policy: Optional[str], as_json: bool) -> None:
        """Re-verify a ledger: hash chain, balances from postings, and a full replay."""
        from charter.runtime.api import audit_and_replay

        shown = _ledger_arg(db, must_exist=False)[1]
        # the stored rows are checked against the journal and against replay's own state:
        # the ledger's state is never loaded (memory: one state, replay's); the open-time
        # check is made once, by the audit (the state digest included)
        rt = _open_ledger(db, policy, state=False, check_state=False)
        # one read of the journal for the chain, signatures and replay
        rep, rpl = audit_and_replay(rt)
        problems = list(rep.problems) + [p for p in rpl.problems if p not in rep.problems]
        ok = rep.ok and rpl.ok
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "ok": ok,
                        "entries": rep.entries,
                        "head": rep.head,
                        "signatures": rep.signatures,
                        "problems": problems,
                    },
                    indent=2,
                )
            )
        else:
            click.echo(
                f"{shown}: {rep.entries} journal entries, {rep.balances_checked} accounts checked"
            )
            if ok:
                click.echo(
                    "OK: hash chain intact, balances match postings, replay reproduces the state"
                    + (f", {rep.signatures} signature(s) re-verified" if rep.signatures else "")
                )
                click.echo(f"journal head {rep.head}")
            else:
                click.echo(f"FAILED: {len(problems)} problem(s)")
                for p in problems[:50]:
                    click.echo(f"  - {_printable(p)}")
        sys.exit(0 if ok else 1)

    @cli.command()
    @click.argument("db")
    @click.option("--policy", default=None, help="Compile this policy instead of the recorded one.")
    @click.option("--json", "as_json", is_flag=True)
    def replay(db: str, policy: Optional[str], as_json: bool) -> None:
        """Rebuild the state from the journal alone and compare it with the ledger."""
        from charter.runtime.api import replay as do_replay
        from charter.runtime.store import StoreError

        db = _ledger_arg(db, must_exist=True)[0]
        pol = _compile(policy) if policy else None
        try:
            rep = do_replay(db, pol)
        except StoreError as exc:
            _fail(str(exc))
        except PolicyNotExecutable as exc:
            _fail(f"{db}: this runtime cannot execute the policy: {exc}", 1)
        if as_json:
            click.echo(json.dumps(rep.to_dict(), indent=2))
        else:
            click.echo(f"replayed {rep.entries} entries")
            click.echo(f"final hash  {rep.head}")
            click.echo(f"stored hash {rep.stored_head}")
            click.echo("match: state and journal reproduced exactly" if rep.ok else "MISMATCH")
            for p in rep.problems:
                click.echo(f"  - {_printable(p)}")
        sys.exit(0 if rep.ok else 1)

    @cli.command("test")
    @click.argument("paths", nargs=-1, required=True)
    @click.option("-k", "keyword", default=None, help="Only tests whose name contains this text.")
    @click.option("--json", "as_json", is_flag=True)
    @click.option("-v", "verbose", is_flag=True, help="One line per test.")
    def test_cmd(
        paths: tuple[str, ...], keyword: Optional[str], as_json: bool, verbose: bool
    ) -> None:
        """Run the `test` blocks of policies (files or directories of *.charter)."""
        from charter.compiler.pipeline import Compilation
        from charter.runtime.testing import run_tests

        files: list[Path] = []
        for p in paths:
            path = Path(p)
            if path.is_dir():
                files.extend(sorted(path.rglob("*.charter")))
            elif path.is_file():
                files.append(path)
            else:
                _fail(f"{p}: no such file or directory")
        if not files:
            _fail("no .charter files found")
        started = time.perf_counter()
        results = []
        errors: list[str] = []
        for f in files:
            try:
                pol = Compilation.from_path(f).ir
            except CharterError as exc:
                errors.append(
                    f"{f}: does not compile\n" + render_text(exc.diagnostics, exc.sources)
                )
                if not as_json:
                    click.echo(f"{f} E")
                continue
            try:
                res = [r for r in run_tests(pol) if keyword is None or keyword in r.name]
            except PolicyNotExecutable as exc:
                errors.append(f"{f}: this runtime cannot execute the policy: {exc}")
                if not as_json:
                    click.echo(f"{f} E")
                continue
            results.extend((f, r) for r in res)
            if not as_json:
                if verbose:
                    for r in res:
                        click.echo(f"{f}::{r.name} {'PASSED' if r.passed else 'FAILED'}")
                elif res:
                    click.echo(f"{f} " + "".join("." if r.passed else "F" for r in res))
        failed = [(f, r) for f, r in results if not r.passed]
        passed = len(results) - len(failed)
        elapsed = time.perf_counter() - started
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "passed": passed,
                        "failed": len(failed),
                        "errors": errors,
                        "tests": [{"file": str(f), **r.to_dict()} for f, r in results],
                    },
                    indent=2,
                )
            )
        else:
            for f, r in failed:
                click.echo(f"\n___ {f}::{r.name} ___ ({r.span})")
                for msg in r.failures:
                    click.echo(f"  {msg}")
            for e in errors:
                click.echo("\n" + e)
            summary = f"{passed} passed"
            if failed:
                summary += f", {len(failed)} failed"
            if errors:
                summary += f", {len(errors)} error(s)"
            click.echo(f"\n{summary} in {elapsed:.2f}s")
        sys.exit(1 if failed or errors else 0)


class _NoBar:
    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, n: int) -> None:
        pass
