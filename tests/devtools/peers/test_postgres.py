"""The project's private PostgreSQL server: what the database tests rely on instead of the machine's.

The controller's own tests run a second server (offset + 50, in a directory of their own), so the
session's server, which other tests use meanwhile, is never touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fsm_devtools.fixtures.db import ADMIN_URL_ENV
from fsm_devtools.peers.postgres import PORT, PostgresError, PostgresServer, offset_from_env

pytestmark = pytest.mark.postgresql

# Offsets are multiples of 100 by convention; + 50 keeps this port off every suite's and mail stack's.
TEST_OFFSET = offset_from_env() + 50


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fsm-pgt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(state_dir: Path) -> Iterator[PostgresServer]:
    pg = PostgresServer(state_dir, port_offset=TEST_OFFSET)
    yield pg
    pg.stop()


def _uid(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Uid:"))
    return int(line.split()[1])


def test_the_database_tests_use_the_private_server_unless_an_admin_url_is_given(postgres_admin: str) -> None:
    if os.environ.get(ADMIN_URL_ENV):
        assert postgres_admin == os.environ[ADMIN_URL_ENV]
        return
    session = PostgresServer(port_offset=offset_from_env())
    assert postgres_admin == session.admin_url
    assert f":{PORT + offset_from_env()}/" in postgres_admin
    with psycopg.connect(postgres_admin, connect_timeout=5) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None and Path(row[0]) == session.data_dir


def test_private_server_listens_on_loopback_only_as_an_unprivileged_user_and_keeps_its_data(
    server: PostgresServer, state_dir: Path
) -> None:
    server.start()
    status = server.status()
    assert status.running and status.pid is not None
    assert _uid(status.pid) != 0
    with psycopg.connect(server.admin_url, autocommit=True, connect_timeout=5) as conn:
        names = ("listen_addresses", "port", "unix_socket_directories", "data_directory")
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}  # type: ignore[index]
        rules = conn.execute("SELECT type, address, auth_method FROM pg_hba_file_rules").fetchall()
        conn.execute("CREATE DATABASE kept")
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "port": str(PORT + TEST_OFFSET),
        "unix_socket_directories": str(state_dir),
        "data_directory": str(state_dir / "data"),
    }
    assert sorted(rules, key=str) == sorted(
        [("local", None, "trust"), ("host", "127.0.0.1", "trust"), ("host", "::1", "trust")], key=str
    )
    # The unix socket in the private directory works too.
    with psycopg.connect(host=str(state_dir), port=server.port, user="postgres", dbname="kept") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    server.stop()
    assert not server.running
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", server.port)) != 0
    # Started again on the same directory: no second initdb, the database is still there.
    again = PostgresServer(state_dir, port_offset=TEST_OFFSET).start()
    with psycopg.connect(again.url("kept"), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("kept",)


def test_start_adopts_a_running_server_and_stop_leaves_other_servers_alone(
    server: PostgresServer, state_dir: Path, postgres_admin: str
) -> None:
    server.start()
    pid = server.status().pid
    adopted = PostgresServer(state_dir, port_offset=TEST_OFFSET).start()
    assert adopted.status().pid == pid and not adopted.started_here
    adopted.stop()
    assert not server.running
    # The session's server (another state directory) still answers.
    with psycopg.connect(postgres_admin, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_server_that_cannot_start_says_why_from_its_log(state_dir: Path) -> None:
    broken = PostgresServer(state_dir, port_offset=TEST_OFFSET, start_timeout=20,
                            settings={"shared_buffers": "lots"})  # fmt: skip
    with pytest.raises(PostgresError) as caught:
        broken.start()
    assert "shared_buffers" in caught.value.message
    assert str(broken.log_path) in (caught.value.hint or "")
    assert not broken.running


def test_a_taken_port_is_named_before_anything_starts(state_dir: Path) -> None:
    pg = PostgresServer(state_dir, port_offset=TEST_OFFSET)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", pg.port))
        squatter.listen()
        with pytest.raises(PostgresError, match=f"port {pg.port} on 127.0.0.1 is already in use"):
            pg.start()
    assert not pg.running


def test_a_state_directory_too_long_for_a_unix_socket_is_refused() -> None:
    with pytest.raises(PostgresError, match="longer than"):
        PostgresServer("/tmp/" + "x" * 90)
