"""The test PostgreSQL server itself: it is real, reachable over TCP and the Unix socket."""

from __future__ import annotations


def test_server_answers_over_tcp_and_socket(pg_server):
    import psycopg

    with psycopg.connect(pg_server.url) as c:
        (v,) = c.execute("SHOW server_version_num").fetchone()
        assert int(v) >= 120000
    with psycopg.connect(pg_server.socket_url) as c:
        assert c.execute("SELECT current_user").fetchone() == ("postgres",)
