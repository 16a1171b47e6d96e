"""Scenarios: who the agents are, what they do each epoch, and which parameters to sweep.

A scenario is a TOML (or JSON) file, or the same data given to
:func:`scenario_from_data` from Python (where a behaviour or a metric may be
a Python callable).  Everything is checked against the compiled policy
before anything runs: unknown events and arguments, values outside their
type or declared range, swept parameters outside theirs.  Each problem names
the file, the line and the key (:class:`~charter.simulate.errors.ScenarioError`).
See docs/simulate.rst for the format.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Optional, Union

import attrs

from charter.compiler import ir, units
from charter.compiler.diagnostics import did_you_mean

from .errors import ScenarioError, ScenarioProblem, short

MAX_AGENTS = 100_000
MAX_EPOCHS = 100_000
MAX_RUNS = 10_000
MAX_SWEEP_POINTS = 10_000
DIST_KEYS = ("uniform", "choice", "normal", "record", "field")
SPECIALS = ("$self", "$new", "$any", "$epoch")


# ---------------------------------------------------------------------------- model


@attrs.frozen
class ArgSpec:
    """How one argument's value is chosen: a literal, a special ($self, $new, $any,
    $any:Role, $epoch), or a distribution (uniform, choice, normal, record, field)."""

    kind: str  # literal | special | uniform | choice | normal | record | field
    value: Any = None  # literal value (already converted), special name
    lo: Any = None
    hi: Any = None
    choices: tuple = ()
    weights: tuple = ()
    record: str = ""
    where: tuple = ()  # ((field, ArgSpec), ...)
    where_not: tuple = ()
    recent: int = 0  # record: choose among the N most recently created matches (0: all)
    of: str = ""  # field: the argument naming the record
    field: str = ""
    integer: bool = True  # uniform/normal of a numeric type: draw integers (minor units)


@attrs.frozen
class Behaviour:
    event: str
    probability: float = 1.0
    repeat: int = 1  # attempts per epoch, each with the probability
    submitter: ArgSpec = ArgSpec("special", "$self")
    args: tuple = ()  # ((name, ArgSpec), ...)
    python: Optional[Callable[..., Any]] = None  # callable(agent, ctx) -> list of events
    key: str = ""  # where it was declared, for messages


@attrs.frozen
class Population:
    name: str
    role: str
    count: int
    setup: tuple = ()  # Behaviour templates run once per agent at the start
    behaviour: tuple = ()


@attrs.frozen
class Metric:
    name: str
    balance: str = ""  # an account (pool:commons, supply:Credit, ...)
    records: str = ""  # count live records of this kind (with `where`)
    where: tuple = ()
    python: Optional[Callable[..., Any]] = None  # callable(runtime) -> number


@attrs.frozen
class Scenario:
    name: str
    policy_path: str
    epochs: int
    epoch_length: int
    start: int
    seed: int
    runs: int
    params: tuple  # ((name, value as written), ...)
    sweep: tuple  # ((name, (value, ...)), ...)
    setup: tuple  # Behaviours submitted once, before the populations' setup
    populations: tuple
    schedule: tuple = ()  # Behaviours submitted at every epoch's end (e.g. by "clock")
    metrics: tuple = ()
    tick: bool = True  # an @tick at each epoch's end fires due timers
    source: str = ""

    def points(self) -> list[dict[str, Any]]:
        """The sweep grid: one parameter override dict per point (fixed params included)."""
        grid: list[dict[str, Any]] = [dict(self.params)]
        for name, values in self.sweep:
            grid = [dict(p, **{name: v}) for p in grid for v in values]
        return grid


# ---------------------------------------------------------------------------- lines


class LineIndex:
    """Line numbers of keys in a TOML text: ``line(("populations", 1, "count"))``.

    tomllib keeps no positions, so this scans the text once for table headers
    (counting arrays of tables) and ``key = value`` lines (inline tables
    included); a path not found falls back to its nearest ancestor."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")
    _INLINE_KEY = re.compile(r"([A-Za-z0-9_\-]+)\s*=")

    def __init__(self, text: str):
        self.lines: dict[tuple, int] = {}
        counters: dict[tuple, int] = {}
        arrays: set[tuple] = set()
        current: tuple = ()
        array: Optional[list] = None  # [path, next element index, open brackets]
        for n, raw in enumerate(text.splitlines(), 1):
            if array is not None:  # inside a multi-line array: `{ ... }` elements
                stripped = raw.strip()
                if stripped.startswith("{"):
                    elem = array[0] + (array[1],)
                    array[1] += 1
                    self.lines.setdefault(elem, n)
                    for inner in self._INLINE_KEY.finditer(stripped):
                        self.lines.setdefault(elem + (inner.group(1),), n)
                array[2] += raw.count("[") - raw.count("]")
                if array[2] <= 0:
                    array = None
                continue
            m = self._HEADER.match(raw)
            if m:
                names = [s.strip().strip("\"'") for s in m.group(2).split(".")]
                path: tuple = ()
                for i, name in enumerate(names):
                    path += (name,)
                    last = i == len(names) - 1
                    if last and m.group(1) == "[[":
                        idx = counters.get(path, -1) + 1
                        counters[path] = idx
                        arrays.add(tuple(x for x in path if isinstance(x, str)))
                        self.lines.setdefault(path, n)
                        path += (idx,)
                    elif not last and path in counters:
                        path += (counters[path],)
                current = path
                self.lines.setdefault(current, n)
                continue
            k = self._KEY.match(raw)
            if k and not raw.lstrip().startswith("#"):
                keys = tuple(s.strip().strip("\"'") for s in k.group(1).split("."))
                self.lines.setdefault(current + keys, n)
                rest = raw[k.end():]
                if rest.strip().startswith("[") and rest.count("[") > rest.count("]"):
                    array = [current + keys, 0, rest.count("[") - rest.count("]")]
                if "{" in rest:
                    for inner in self._INLINE_KEY.finditer(rest):
                        self.lines.setdefault(current + keys + (inner.group(1),), n)

    def line(self, path: tuple) -> Optional[int]:
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            # an inline key found under any ancestor's inline table
            path = path[:-1]
        return None


class _JsonLines:
    """Line numbers in a JSON scenario: the first line that names the key."""

    def __init__(self, text: str):
        self.text_lines = text.splitlines()

    def line(self, path: tuple) -> Optional[int]:
        for key in reversed([p for p in path if isinstance(p, str)]):
            needle = json.dumps(key) + ":"
            for n, raw in enumerate(self.text_lines, 1):
                if needle in raw.replace('": ', '":'):
                    return n
        return None


def dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out


# ---------------------------------------------------------------------------- reading


class _Reader:
    """Walks scenario data, converting and checking; collects every problem."""

    def __init__(self, policy: ir.Policy, file: str, lines: Any):
        self.policy = policy
        self.file = file
        self.lines = lines
        self.problems: list[ScenarioProblem] = []
        self.handlers = {h.name: h for h in policy.handlers if h.kind == "event"}
        self.records = {r.name: r for r in policy.records}
        self.roles = {r.name for r in policy.roles}
        self.decimals = ir.AssetMap((a.name, a.decimals) for a in policy.assets)
        self.any_refs: list[tuple[tuple, str]] = []  # ($any:LABEL, where) to check

    def fail(self, path: tuple, message: str, hint: str = "") -> None:
        line = self.lines.line(path) if self.lines is not None else None
        self.problems.append(ScenarioProblem(message, dotted(path), self.file, line, hint or ""))

    # -- typed getters: a wrong type is a problem, and the default is used instead

    def table(self, data: Any, path: tuple, key: str, required: bool = False) -> dict:
        v = data.get(key) if isinstance(data, dict) else None
        if v is None:
            if required:
                self.fail(path + (key,), "missing (a table is required here)")
            return {}
        if not isinstance(v, dict):
            self.fail(path + (key,), f"must be a table, not {short(v)}")
            return {}
        return v

    def array(self, data: dict, path: tuple, key: str) -> list:
        v = data.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            self.fail(path + (key,), f"must be an array, not {short(v)}")
            return []
        return v

    def integer(self, data: dict, path: tuple, key: str, default: Optional[int], lo: int,
                hi: int) -> int:
        v = data.get(key, default)
        if v is None:
            self.fail(path + (key,), "missing (an integer is required)")
            return lo
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(path + (key,), f"must be an integer, not {short(v)}")
            return default if default is not None else lo
        if not lo <= v <= hi:
            self.fail(path + (key,), f"{short(v)} is outside {lo}..{hi}")
            return default if default is not None else lo
        return v

    def text(self, data: dict, path: tuple, key: str, default: Optional[str] = None) -> str:
        v = data.get(key, default)
        if v is None:
            self.fail(path + (key,), "missing (text is required)")
            return ""
        if not isinstance(v, str) or not v or len(v) > 200 or "\0" in v:
            self.fail(path + (key,), f"must be non-empty text, not {short(v)}")
            return default or ""
        return v

    def unknown_keys(self, data: dict, path: tuple, allowed: tuple) -> None:
        for k in data:
            if k not in allowed:
                hint = did_you_mean(_key(k), list(allowed)) or f"allowed: {', '.join(allowed)}"
                self.fail(path + (_key(k)[:60],), "unknown key", hint)

    # -- values

    def convert(self, t: ir.Type, v: Any, path: tuple) -> Any:
        """A literal argument value, as the runtime will read it (units convention)."""
        if isinstance(v, float) and not isinstance(t, ir.TRatio):
            if math.isfinite(v) and v == int(v):
                v = int(v)
        if isinstance(t, ir.TOptional):
            if v is None:
                return None
            t = t.inner
        if isinstance(t, ir.TList):
            if not isinstance(v, list) or len(v) > 1000:
                self.fail(path, f"must be an array, not {short(v)}")
                return []
            return [self.convert(t.inner, x, path + (i,)) for i, x in enumerate(v)]
        if isinstance(t, (ir.TParty, ir.TRecord, ir.TText)):
            if not isinstance(v, str) or not v or len(v) > 200:
                self.fail(path, f"must be text (a {_type_name(t)}), not {short(v)}")
                return ""
            return v
        if isinstance(t, ir.TBool):
            if not isinstance(v, bool):
                self.fail(path, f"must be true or false, not {short(v)}")
                return False
            return v
        try:
            return units.read(t, v, lambda a: self.decimals.get(a, 0))
        except units.UnitError as err:
            self.fail(path, str(err))
        except (ValueError, TypeError, OverflowError) as err:
            self.fail(path, f"not a value of type {_type_name(t)}: {short(v)} ({err})")
        return 0

    def argspec(self, t: Optional[ir.Type], v: Any, path: tuple) -> ArgSpec:
        if isinstance(v, str) and v.startswith("$"):
            base = v.split(":", 1)[0]
            if base not in SPECIALS:
                self.fail(path, f"unknown special value {short(v)}",
                          f"specials: {', '.join(SPECIALS)}, $any:ROLE")
            elif base == "$any" and ":" in v:
                self.any_refs.append((path, v.split(":", 1)[1]))  # checked once all are read
            return ArgSpec("special", v)
        if isinstance(v, dict):
            kinds = [k for k in DIST_KEYS if k in v]
            if len(kinds) != 1:
                self.fail(path, "a distribution table needs exactly one of "
                                f"{', '.join(DIST_KEYS)}", f"got keys {short(sorted(map(_key, v)))}")
                return ArgSpec("literal", None)
            kind = kinds[0]
            allowed = {"uniform": ("uniform",), "choice": ("choice", "weights"),
                       "normal": ("normal",), "record": ("record", "where", "not", "recent"),
                       "field": ("field", "of", "times")}[kind]
            self.unknown_keys(v, path, allowed)
            return getattr(self, f"_dist_{kind}")(t, v, path)
        if t is None:
            return ArgSpec("literal", v)
        return ArgSpec("literal", self.convert(t, v, path))

    def _numeric(self, t: Optional[ir.Type]) -> bool:
        inner = t.inner if isinstance(t, ir.TOptional) else t
        return isinstance(inner, (ir.TInt, ir.TAmount, ir.TDuration, ir.TTime))

    def _dist_uniform(self, t: Any, v: dict, path: tuple) -> ArgSpec:
        pair = v["uniform"]
        if not isinstance(pair, list) or len(pair) != 2:
            self.fail(path + ("uniform",), f"must be [low, high], not {short(pair)}")
            return ArgSpec("literal", None)
        if not self._numeric(t):
            self.fail(path + ("uniform",), f"uniform needs a numeric argument, this one is "
                                           f"{_type_name(t)}")
            return ArgSpec("literal", None)
        inner = t.inner if isinstance(t, ir.TOptional) else t
        lo = self.convert(inner, pair[0], path + ("uniform", 0))
        hi = self.convert(inner, pair[1], path + ("uniform", 1))
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            self.fail(path + ("uniform",), f"low {short(pair[0])} is above high {short(pair[1])}")
        return ArgSpec("uniform", lo=lo, hi=hi)

    def _dist_normal(self, t: Any, v: dict, path: tuple) -> ArgSpec:
        spec = v["normal"]
        if not isinstance(spec, dict):
            self.fail(path + ("normal",), "must be a table {mean, sd, min, max}")
            return ArgSpec("literal", None)
        self.unknown_keys(spec, path + ("normal",), ("mean", "sd", "min", "max"))
        if not self._numeric(t):
            self.fail(path + ("normal",), f"normal needs a numeric argument, this one is "
                                          f"{_type_name(t)}")
            return ArgSpec("literal", None)
        inner = t.inner if isinstance(t, ir.TOptional) else t
        got = {}
        for k in ("mean", "sd", "min", "max"):
            if k in spec:
                got[k] = self.convert(inner, spec[k], path + ("normal", k))
            elif k in ("mean", "sd"):
                self.fail(path + ("normal", k), "missing")
        return ArgSpec("normal", value=(got.get("mean", 0), got.get("sd", 0)),
                       lo=got.get("min"), hi=got.get("max"))

    def _dist_choice(self, t: Any, v: dict, path: tuple) -> ArgSpec:
        values = v["choice"]
        if not isinstance(values, list) or not values or len(values) > 10_000:
            self.fail(path + ("choice",), f"must be a non-empty array, not {short(values)}")
            return ArgSpec("literal", None)
        choices = tuple(self.argspec(t, x, path + ("choice", i)) for i, x in enumerate(values))
        weights = v.get("weights")
        if weights is not None:
            ok = (isinstance(weights, list) and len(weights) == len(values)
                  and all(isinstance(w, (int, float)) and not isinstance(w, bool)
                          and _finite(w) and 0 <= w <= 1e12 for w in weights)
                  and sum(weights) > 0)
            if not ok:
                self.fail(path + ("weights",), "must be as many non-negative numbers as choices, "
                                               "not all zero")
                weights = None
        return ArgSpec("choice", choices=choices, weights=tuple(weights or ()))

    def _dist_record(self, t: Any, v: dict, path: tuple) -> ArgSpec:
        name = v["record"]
        if not isinstance(name, str) or name not in self.records:
            self.fail(path + ("record",), f"no record kind {short(name)} in the policy",
                      did_you_mean(_key(name), list(self.records)) or
                      f"records: {', '.join(self.records) or 'none'}")
            return ArgSpec("literal", None)
        fields = {f.name: f for f in self.records[name].fields}
        conds = []
        for key in ("where", "not"):
            table = v.get(key, {})
            if not isinstance(table, dict):
                self.fail(path + (key,), f"must be a table of field = value, not {short(table)}")
                continue
            found = []
            for fname, fv in table.items():
                if fname not in fields:
                    self.fail(path + (key, _key(fname)[:60]), f"record {name} has no field "
                              f"{short(fname)}", did_you_mean(_key(fname), list(fields)))
                    continue
                found.append((fname, self.argspec(fields[fname].type, fv, path + (key, fname))))
            conds.append(tuple(found))
        recent = v.get("recent", 0)
        if isinstance(recent, bool) or not isinstance(recent, int) or not 0 <= recent <= 10**6:
            self.fail(path + ("recent",), f"must be a count of records (0: all), not "
                                          f"{short(recent)}")
            recent = 0
        return ArgSpec("record", record=name, where=conds[0] if conds else (),
                       where_not=conds[1] if len(conds) > 1 else (), recent=recent)

    def _dist_field(self, t: Any, v: dict, path: tuple) -> ArgSpec:
        fname, of = v.get("field"), v.get("of")
        if not isinstance(fname, str) or not isinstance(of, str):
            self.fail(path, "field needs field = NAME and of = ARGUMENT (the argument that "
                            "names the record)")
            return ArgSpec("literal", None)
        times = v.get("times", [1, 1])
        if not (isinstance(times, list) and len(times) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and _finite(x)
                and 0 <= x <= 1e6 for x in times) and times[0] <= times[1]):
            self.fail(path + ("times",), f"must be [low, high] factors, not {short(times)}")
            times = [1, 1]
        return ArgSpec("field", field=fname, of=of, lo=float(times[0]), hi=float(times[1]))

    # -- behaviours

    def behaviour(self, data: Any, path: tuple, callables: dict) -> Optional[Behaviour]:
        if callable(data):
            return Behaviour(event="<python>", python=data, key=dotted(path))
        if not isinstance(data, dict):
            self.fail(path, f"must be a table, not {short(data)}")
            return None
        self.unknown_keys(data, path, ("event", "probability", "repeat", "submitter", "args",
                                       "python"))
        repeat = self.integer(data, path, "repeat", 1, 1, 1000)
        if "python" in data:
            fn = data["python"]
            if isinstance(fn, str):
                fn = callables.get(fn) or _import_callable(fn)
            if not callable(fn):
                self.fail(path + ("python",), f"not a callable or 'module:function': "
                                              f"{short(data['python'])}")
                return None
            prob = self._probability(data, path)
            return Behaviour(event="<python>", probability=prob, repeat=repeat, python=fn,
                             key=dotted(path))
        event = self.text(data, path, "event")
        h = self.handlers.get(event)
        if h is None:
            if event:
                self.fail(path + ("event",), f"the policy has no event {short(event)}",
                          did_you_mean(event, list(self.handlers)) or
                          f"events: {', '.join(self.handlers)}")
            return None
        params = {f.name: f for f in h.params}
        args_data = data.get("args", {})
        if not isinstance(args_data, dict):
            self.fail(path + ("args",), f"must be a table, not {short(args_data)}")
            args_data = {}
        args = []
        for name, v in args_data.items():
            if name not in params:
                self.fail(path + ("args", _key(name)[:60]), f"event {event} has no argument "
                          f"{short(name)}", did_you_mean(_key(name), list(params)) or
                          f"arguments: {', '.join(params) or 'none'}")
                continue
            spec = self.argspec(params[name].type, v, path + ("args", name))
            if spec.kind == "literal" and spec.value is not None:
                self._check_range(params[name], spec.value, path + ("args", name))
            args.append((name, spec))
        missing = [n for n, f in params.items()
                   if n not in args_data and not isinstance(f.type, ir.TOptional)]
        if missing:
            self.fail(path + ("args",), f"event {event} needs argument(s) {', '.join(missing)}")
        sub = data.get("submitter", "$self")
        submitter = self.argspec(ir.TParty(), sub, path + ("submitter",))
        return Behaviour(event=event, probability=self._probability(data, path), repeat=repeat,
                         submitter=submitter, args=tuple(args), key=dotted(path))

    def _check_range(self, f: Any, value: Any, path: tuple) -> None:
        lo, hi = getattr(f, "lo", None), getattr(f, "hi", None)
        try:
            if lo is not None and value < lo or hi is not None and value > hi:
                self.fail(path, f"{short(value)} is outside the declared range "
                                f"{lo}..{hi} of argument {f.name}")
        except TypeError:
            pass

    def _probability(self, data: dict, path: tuple) -> float:
        p = data.get("probability", 1.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not (
                isinstance(p, int) or math.isfinite(p)) or not 0 <= p <= 1:
            self.fail(path + ("probability",), f"must be a number within 0..1, not {short(p)}")
            return 0.0
        return float(p)


def _finite(x: Any) -> bool:
    """A finite number (math.isfinite overflows on a huge int)."""
    return isinstance(x, int) or math.isfinite(x)


def _key(k: Any) -> str:
    """A key or name as text (a hostile non-text one shown as its cut repr: str() of a
    10,000-digit int raises)."""
    return k if isinstance(k, str) else short(k)


def _type_name(t: Any) -> str:
    from charter.compiler.export_aigrid import type_text

    try:
        return type_text(t)
    except Exception:
        return type(t).__name__


def _import_callable(spec: str) -> Any:
    """``"package.module:function"`` -> the function, or None."""
    import importlib

    mod, sep, name = spec.partition(":")
    if not sep or not mod or not name:
        return None
    try:
        return getattr(importlib.import_module(mod), name, None)
    except Exception:
        return None


SCENARIO_KEYS = ("scenario", "params", "sweep", "setup", "schedule", "populations", "metrics")
HEADER_KEYS = ("name", "policy", "epochs", "epoch_length", "start", "seed", "runs", "tick")


def scenario_from_data(data: Any, *, base_dir: Union[str, Path] = ".", file: str = "",
                       lines: Any = None, callables: Optional[dict] = None,
                       overrides: Optional[dict] = None) -> Scenario:
    """Check scenario data (a TOML/JSON document, or built in Python) against its policy.

    ``overrides`` replaces header values (``runs``, ``seed``, ``epochs``) as the
    command line does.  Raises :class:`ScenarioError` listing every problem."""
    from charter import load_policy
    from charter.compiler.diagnostics import CharterError, render_text

    callables = callables or {}

    def early(path: tuple, message: str, hint: str = "") -> ScenarioError:
        line = lines.line(path) if lines is not None else None
        return ScenarioError([ScenarioProblem(message, dotted(path), file, line, hint)])

    if not isinstance(data, dict):
        raise early((), f"a scenario is a table, not {short(data)}")
    deep = _too_deep(data)
    if deep is not None:
        raise early(deep, f"nested more than {MAX_DEPTH} levels deep")
    head = data.get("scenario")
    if not isinstance(head, dict):
        raise early(("scenario",), "missing [scenario] table (name, policy, epochs, ...)")
    head = dict(head, **(overrides or {}))
    policy_ref = head.get("policy")
    if not isinstance(policy_ref, str) or not policy_ref or len(policy_ref) > 1024 \
            or "\0" in policy_ref:
        raise early(("scenario", "policy"), "must name the policy file (relative to the "
                                            f"scenario), not {short(policy_ref)}")
    policy_path = Path(base_dir) / policy_ref
    try:
        policy = load_policy(policy_path)
    except CharterError as err:
        raise early(("scenario", "policy"), "the policy does not compile:\n"
                    + render_text(err.diagnostics, err.sources)) from None
    except (OSError, ValueError) as err:
        raise early(("scenario", "policy"), f"cannot read {policy_path}: {err}") from None
    r = _Reader(policy, file, lines)
    r.unknown_keys(data, (), SCENARIO_KEYS)
    r.unknown_keys(head, ("scenario",), HEADER_KEYS)
    name = r.text(head, ("scenario",), "name", "scenario")
    epochs = r.integer(head, ("scenario",), "epochs", 10, 1, MAX_EPOCHS)
    runs = r.integer(head, ("scenario",), "runs", 1, 1, MAX_RUNS)
    seed = r.integer(head, ("scenario",), "seed", 0, 0, 2**63 - 1)
    start = r.integer(head, ("scenario",), "start", 1_000_000, 0, 2**40)
    tick = head.get("tick", True)
    if not isinstance(tick, bool):
        r.fail(("scenario", "tick"), f"must be true or false, not {short(tick)}")
        tick = True
    length_raw = head.get("epoch_length", "1 days")
    length = units.parse_duration(length_raw) if not isinstance(length_raw, bool) else None
    if length is None or not 1 <= length <= 10 * 365 * 86_400:
        r.fail(("scenario", "epoch_length"), f"must be a duration such as \"30 days\" "
                                             f"(1 second..10 years), not {short(length_raw)}")
        length = 86_400
    params = r.table(data, (), "params")
    sweep = r.table(data, (), "sweep")
    _check_params(r, policy, params, sweep)
    setup = tuple(b for i, s in enumerate(r.array(data, (), "setup"))
                  if (b := r.behaviour(s, ("setup", i), callables)) is not None)
    schedule = tuple(b for i, s in enumerate(r.array(data, (), "schedule"))
                     if (b := r.behaviour(s, ("schedule", i), callables)) is not None)
    pops = []
    total = 0
    raw_pops = r.array(data, (), "populations")
    if not raw_pops:
        r.fail(("populations",), "a scenario needs at least one [[populations]]")
    seen: set[str] = set()
    for i, p in enumerate(raw_pops):
        path = ("populations", i)
        if not isinstance(p, dict):
            r.fail(path, f"must be a table, not {short(p)}")
            continue
        r.unknown_keys(p, path, ("name", "role", "count", "setup", "behaviour"))
        pname = r.text(p, path, "name", f"population{i}")
        if pname in seen:
            r.fail(path + ("name",), f"two populations are named {short(pname)}")
        seen.add(pname)
        count = r.integer(p, path, "count", None, 0, MAX_AGENTS)
        total += count
        role = r.text(p, path, "role", pname)
        psetup = tuple(b for j, s in enumerate(r.array(p, path, "setup"))
                       if (b := r.behaviour(s, path + ("setup", j), callables)) is not None)
        beh = tuple(b for j, s in enumerate(r.array(p, path, "behaviour"))
                    if (b := r.behaviour(s, path + ("behaviour", j), callables)) is not None)
        pops.append(Population(pname, role, count, psetup, beh))
    labels = {p.name for p in pops} | {p.role for p in pops}
    for path, label in r.any_refs:
        if label not in labels:
            r.fail(path, f"no population or role {short(label)} in the scenario",
                   did_you_mean(label, sorted(labels)) or
                   f"populations and roles: {', '.join(sorted(labels))}")
    if total > MAX_AGENTS:
        r.fail(("populations",), f"{total} agents in all: at most {MAX_AGENTS}")
    metrics = []
    for i, m in enumerate(r.array(data, (), "metrics")):
        metrics.append(_metric(r, m, ("metrics", i), callables))
    if r.problems:
        raise ScenarioError(r.problems)
    points = 1
    for _, values in sweep.items():
        points *= len(values)
    if points > MAX_SWEEP_POINTS:
        raise early(("sweep",), f"{points} sweep points: at most {MAX_SWEEP_POINTS}")
    return Scenario(
        name=name, policy_path=str(policy_path), epochs=epochs, epoch_length=length,
        start=start, seed=seed, runs=runs,
        params=tuple(sorted(params.items())),
        sweep=tuple((k, tuple(v)) for k, v in sweep.items()),
        setup=setup, populations=tuple(pops), schedule=schedule,
        metrics=tuple(m for m in metrics if m),
        tick=tick, source=file)


MAX_DEPTH = 32  # tables and arrays within one another: far above any real scenario


def _too_deep(data: Any) -> Optional[tuple]:
    """The path of a value nested deeper than MAX_DEPTH, or None (no recursion: the
    value itself may be nested thousands deep)."""
    stack = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return path[:MAX_DEPTH]
        if isinstance(value, dict):
            stack.extend((v, path + (str(k)[:60] if isinstance(k, str) else "?",))
                         for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, path + (i,)) for i, v in enumerate(value))
    return None


def _check_params(r: _Reader, policy: ir.Policy, params: dict, sweep: dict) -> None:
    from charter.runtime.engine import ParamError, resolve_params

    declared = {p.name for p in policy.params}
    for table, key in ((params, "params"), (sweep, "sweep")):
        for name, value in table.items():
            path = (key, _key(name)[:60])
            if name not in declared:
                r.fail(path, f"the policy has no parameter {short(name)}",
                       did_you_mean(_key(name), sorted(declared)) or
                       f"parameters: {', '.join(sorted(declared)) or 'none'}")
                continue
            values = value if key == "sweep" else [value]
            if key == "sweep" and (not isinstance(value, list) or not value
                                   or len(value) > 1000):
                r.fail(path, f"a swept parameter takes a non-empty array of values, not "
                             f"{short(value)}")
                continue
            for i, v in enumerate(values):
                try:
                    resolve_params(policy, {name: v})
                except ParamError as err:
                    r.fail(path + ((i,) if key == "sweep" else ()), str(err))
                except Exception as err:  # a hostile value the converter did not expect
                    r.fail(path + ((i,) if key == "sweep" else ()),
                           f"not a value of this parameter: {short(v)} ({type(err).__name__})")
    both = set(params) & set(sweep)
    for name in sorted(map(_key, both)):
        r.fail(("sweep", name), "set in both [params] and [sweep]")


def _metric(r: _Reader, m: Any, path: tuple, callables: dict) -> Optional[Metric]:
    if isinstance(m, tuple) and len(m) == 2 and callable(m[1]):  # the Python API
        return Metric(name=_key(m[0]), python=m[1])
    if not isinstance(m, dict):
        r.fail(path, f"must be a table, not {short(m)}")
        return None
    r.unknown_keys(m, path, ("name", "balance", "records", "where", "python"))
    name = r.text(m, path, "name", "metric")
    kinds = [k for k in ("balance", "records", "python") if k in m]
    if len(kinds) != 1:
        r.fail(path, "a metric needs exactly one of balance, records, python")
        return None
    if "python" in m:
        fn = m["python"]
        if isinstance(fn, str):
            fn = callables.get(fn) or _import_callable(fn)
        if not callable(fn):
            r.fail(path + ("python",), f"not a callable or 'module:function': "
                                       f"{short(m['python'])}")
            return None
        return Metric(name=name, python=fn)
    if "balance" in m:
        acc = m["balance"]
        if not isinstance(acc, str) or not re.fullmatch(r"[A-Za-z_][\w.:\- ()]{0,200}", acc):
            r.fail(path + ("balance",), f"must be an account such as \"pool:commons\", not "
                                        f"{short(acc)}")
            return None
        return Metric(name=name, balance=acc)
    spec = r._dist_record(None, {"record": m["records"], "where": m.get("where", {})},
                          path)
    if spec.kind != "record":
        return None
    return Metric(name=name, records=spec.record, where=spec.where)


def load_scenario(path: Union[str, Path], *, callables: Optional[dict] = None,
                  overrides: Optional[dict] = None) -> Scenario:
    """Read and check a scenario file (``.toml`` or ``.json``)."""
    import tomllib

    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ScenarioError([ScenarioProblem(f"cannot read the scenario: "
                                             f"{err.strerror or err}", "", name)]) from None
    if len(raw) > 10 * 2**20:
        raise ScenarioError([ScenarioProblem("the scenario is over 10 MiB", "", name)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ScenarioError([ScenarioProblem(f"not UTF-8 text ({err.reason} at byte "
                                             f"{err.start})", "", name)]) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            line = getattr(err, "lineno", None)
            raise ScenarioError([ScenarioProblem(f"not JSON: {getattr(err, 'msg', err)}", "",
                                                 name, line)]) from None
        lines: Any = _JsonLines(text)
    else:
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as err:
            m = re.search(r"line (\d+)", str(err))
            raise ScenarioError([ScenarioProblem(f"not TOML: {str(err)[:200]}", "", name,
                                                 int(m.group(1)) if m else None)]) from None
        lines = LineIndex(text)
    return scenario_from_data(data, base_dir=path.parent, file=name, lines=lines,
                              callables=callables, overrides=overrides)
