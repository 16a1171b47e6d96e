"""charter/memory.py: the verify command's glibc setting (reuse Z3's freed 8 MB blocks).

Run in a fresh interpreter: the setting is process-wide and the test process is long-lived.
Its effect (half the page faults of a cold verify) is measured in benchmarks/bench_startup.py,
not here."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


def _in_fresh_python(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt's M_MMAP_THRESHOLD is a glibc setting")
def test_glibc_accepts_the_setting():
    assert _in_fresh_python(
        "from charter.memory import keep_freed_blocks; print(keep_freed_blocks())") == "True"


def test_it_is_harmless_twice_and_never_raises():
    out = _in_fresh_python(
        "from charter.memory import keep_freed_blocks as k; a = k(); b = k(); print(a == b)")
    assert out == "True"
