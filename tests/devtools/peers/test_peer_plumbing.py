"""What the peer controllers share: the port offset variables, the by-hand command line, the test CA."""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path

import pytest

from fsm_devtools.peers import mailstack, postgres
from fsm_devtools.peers.ca import TestCa
from fsm_devtools.peers.mailstack import __main__ as mailstack_cli


def test_postgres_takes_its_own_offset_variable_before_the_mail_stacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FSM_MAIL_PORT_OFFSET", "100")
    monkeypatch.setenv("FSM_PG_PORT_OFFSET", "300")
    assert (postgres.offset_from_env(), mailstack.offset_from_env()) == (300, 100)
    monkeypatch.setenv("FSM_PG_PORT_OFFSET", "")
    assert postgres.offset_from_env() == 100


@pytest.mark.parametrize("main", [mailstack_cli.main, postgres.main], ids=["mailstack", "postgres"])
def test_a_bad_offset_variable_is_an_error_line_not_a_traceback(
    main: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FSM_MAIL_PORT_OFFSET", "abc")
    monkeypatch.delenv("FSM_PG_PORT_OFFSET", raising=False)
    assert main(["status"]) == 1  # type: ignore[operator]
    err = capsys.readouterr().err
    assert "error: FSM_MAIL_PORT_OFFSET='abc' is not an integer" in err
    assert "hint: set FSM_MAIL_PORT_OFFSET to e.g. 0, 100" in err


def test_a_test_ca_made_once_is_kept_and_its_certificate_verifies(tmp_path: Path) -> None:
    first = TestCa.once(tmp_path / "tls", name="fsm test CA", server_names=["localhost", "127.0.0.1"], days=2)
    again = TestCa.once(tmp_path / "tls", name="another CA", server_names=["other.test"], days=2)
    assert again.ca_file.read_bytes() == first.ca_file.read_bytes()
    for key in (first.key_file, tmp_path / "tls" / "ca.key"):
        assert key.stat().st_mode & 0o777 == 0o600
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(first.cert_file, first.key_file)
    client = ssl.create_default_context(cafile=str(first.ca_file))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    back_in, back_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_client = client.wrap_bio(back_in, outgoing, server_hostname="127.0.0.1")
    tls_server = server.wrap_bio(incoming, back_out, server_side=True)
    for _ in range(10):  # a handshake in memory: the client verifies the name and the chain
        for side in (tls_client, tls_server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        incoming.write(outgoing.read())
        back_in.write(back_out.read())
    assert tls_client.getpeercert()["subjectAltName"] == (("DNS", "localhost"), ("IP Address", "127.0.0.1"))
