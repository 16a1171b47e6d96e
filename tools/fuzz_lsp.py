"""Hammer the language server's analysis with hostile documents and cursor positions.

Mutates stdlib policies and examples (cuts, junk, huge literals, NULs, lone
surrogates, deep nesting) and asks hover, definition, completion and references at random
positions of each mutant, as an editor would while someone types.  Prints how
many queries ran, how many raised (must be 0) and the slowest one.

    .venv/bin/python tools/fuzz_lsp.py --queries 100000 --seed 1
"""
from __future__ import annotations

import argparse
import random
import time
import traceback
from pathlib import Path

from charter.lsp.analysis import Analysis

ROOT = Path(__file__).resolve().parents[1]
JUNK = ["{", "}", "(", ")", '"', "#", ".", "gig.", "t.", "\x00", "\ud800", "9" * 5000,
        'import "', "if true { " * 60, "\u2028", "\r\n", "@", "..", "%", "\t", "é", "😀"]


def mutant(rng: random.Random, sources: list[str]) -> str:
    text = rng.choice(sources)
    for _ in range(rng.randint(0, 4)):
        at = rng.randint(0, len(text))
        junk = rng.choice(JUNK) if rng.random() < 0.7 else "".join(
            chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(1, 12)))
        text = text[:at] + junk + text[at + rng.randint(0, 40):]
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--per-document", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    files = sorted(ROOT.glob("stdlib_policies/*.charter")) + sorted(ROOT.glob("examples/*/*.charter"))
    sources = [f.read_text("utf-8") for f in files]
    queries = docs = crashes = 0
    slowest = (0.0, "")
    start = time.perf_counter()
    while queries < args.queries:
        text = mutant(rng, sources)
        path = str(rng.choice(files))
        t0 = time.perf_counter()
        try:
            a = Analysis(text, path)
            a.editor_diagnostics()
            a.symbols_outline()
        except Exception:
            crashes += 1
            print("CRASH compiling:\n" + traceback.format_exc())
            continue
        docs += 1
        slowest = max(slowest, (time.perf_counter() - t0, f"compile of a {len(text)}-char mutant"))
        lines = text.split("\n")
        for _ in range(args.per_document):
            line = rng.randint(-1, len(lines) + 1)
            col = rng.randint(-1, 120)
            kind = rng.choice(("hover", "definition", "completion", "references"))
            t0 = time.perf_counter()
            try:
                if kind == "hover":
                    a.hover((line, col))
                elif kind == "definition":
                    a.definition((line, col))
                elif kind == "references":
                    a.references((line, col))
                else:
                    a.completions((line, col), lines[line - 1] if 1 <= line <= len(lines) else "")
            except Exception:
                crashes += 1
                print(f"CRASH in {kind} at {line}:{col}:\n" + traceback.format_exc())
            slowest = max(slowest, (time.perf_counter() - t0, f"{kind} at {line}:{col}"))
            queries += 1
    took = time.perf_counter() - start
    print(f"documents compiled: {docs}")
    print(f"queries (hover/definition/completion/references): {queries}")
    print(f"tracebacks: {crashes}")
    print(f"slowest: {slowest[0]:.3f} s ({slowest[1]})")
    print(f"total: {took:.1f} s")


if __name__ == "__main__":
    main()
