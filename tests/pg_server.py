"""A real, throwaway PostgreSQL server for the tests (no mock database).

:class:`PgServer` runs the machine's own ``initdb`` and ``pg_ctl`` in a fresh
temporary directory, listening on 127.0.0.1 at a free port (and on a Unix
socket in that directory), and removes everything on :meth:`stop`.
PostgreSQL refuses to run as root, and the tests and CI run as root: then
the server runs as the unprivileged ``postgres`` system user
(``runuser -u postgres -- ...``) in a directory that user owns.

The superuser ``postgres`` has a password (:data:`PASSWORD`) over TCP, so
tests can check that a wrong one is refused without being echoed; the Unix
socket trusts local connections.

Used by the session fixture ``pg_server`` in ``tests/conftest.py``::

    def test_x(pg_server):
        url = pg_server.new_url()   # a fresh, empty ledger (its own schema)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Optional

PASSWORD = "charter-test-pw"
_PG_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def find_binaries() -> Optional[tuple[str, str]]:
    """(initdb, pg_ctl) from PATH or the usual Debian places, or None."""
    for d in (None, *_PG_DIRS):
        path = None if d is None else d
        initdb = shutil.which("initdb", path=path)
        pg_ctl = shutil.which("pg_ctl", path=path)
        if initdb and pg_ctl:
            return initdb, pg_ctl
    return None


def why_unavailable() -> Optional[str]:
    """None when a server can be started here, else why not (the skip message)."""
    if find_binaries() is None:
        return "no PostgreSQL binaries (initdb/pg_ctl) on PATH or in /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' system user to run PostgreSQL as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, fsync: bool = False) -> None:
        """``fsync=False`` (tests): the server is thrown away, so it skips flushing to disk;
        benchmarks pass True to measure durable commits."""
        self.fsync = fsync
        bins = find_binaries()
        if bins is None:
            raise RuntimeError(why_unavailable())
        self.initdb, self.pg_ctl = bins
        self.as_root = os.geteuid() == 0
        # directly under /tmp: pytest's own tmp dirs are 0700 root, closed to `postgres`
        self.base = Path(tempfile.mkdtemp(prefix="charter-pg-"))
        self.data = self.base / "data"
        self.port = 0
        self.started = False

    def _run(self, *cmd: str, timeout: float = 120) -> None:
        argv = ["runuser", "-u", "postgres", "--", *cmd] if self.as_root else list(cmd)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            log = ""
            try:
                log = (self.base / "server.log").read_text()[-2000:]
            except OSError:
                pass
            raise RuntimeError(
                f"{' '.join(cmd[:2])} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                f"{proc.stderr[-2000:]}\n{log}"
            )

    def start(self) -> "PgServer":
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
        os.chmod(self.base, 0o700)
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            self.initdb, "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--locale=C",
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-N",
        )  # fmt: skip
        pwfile.unlink()
        # a port nobody holds now; if another process takes it before the server binds,
        # pg_ctl fails and we try another
        for _attempt in range(5):
            self.port = _free_port()
            opts = (
                f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                "-c max_connections=60 -c shared_buffers=32MB"
            )
            if not self.fsync:
                # test speed: the server is thrown away; durability is the benchmarks' business
                opts += " -c fsync=off -c full_page_writes=off"
            try:
                self._run(
                    self.pg_ctl, "-D", str(self.data), "-l", str(self.base / "server.log"),
                    "-o", opts, "-w", "-t", "60", "start",
                )  # fmt: skip
                self.started = True
                return self
            except RuntimeError:
                if _attempt == 4:
                    raise
        return self

    def stop(self) -> None:
        if self.started:
            try:
                self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)

    # ------------------------------------------------------------ URLs

    @property
    def url(self) -> str:
        """The server's ``postgres`` database over TCP, with the password."""
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    @property
    def socket_url(self) -> str:
        """The same database over the Unix socket (no password needed)."""
        return f"postgresql://postgres@/postgres?host={self.base}&port={self.port}"

    def new_url(self, prefix: str = "t") -> str:
        """A URL naming a fresh, empty ledger: its own schema in the ``postgres`` database."""
        return f"{self.url}?schema={prefix}_{uuid.uuid4().hex[:16]}"

    def __enter__(self) -> "PgServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
