"""The [web] part of config.example.toml loads strictly and shows every setting; a bad one is
refused naming its key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec
import pytest

from fsm_common import configfile
from fsm_protocol.errors import ConfigError
from fsm_server.config import ServerConfig, WebSection

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def part() -> str:
    m = re.search(r"begin fsm-server-web\n(.*?)\n# =+ end fsm-server web", EXAMPLE.read_text(), re.S)
    assert m, "config.example.toml lacks the fsm-server-web markers"
    return m.group(1)


def test_the_example_loads_and_states_the_defaults() -> None:
    config = configfile.convert(tomllib.loads(part()), ServerConfig, source="config.example.toml")
    assert config.web == WebSection()


def test_every_setting_is_shown() -> None:
    text = part()
    for field in msgspec.structs.fields(WebSection):
        assert re.search(rf"^#? ?{field.encode_name} = ", text, re.M), (
            f"[web] {field.encode_name} is not shown"
        )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("idle_timeout_minutes", 0),
        ("absolute_timeout_hours", 10_000.0),
        ("throttle_free_failures", 0),
        ("port", 70000),
    ],
)
def test_a_value_out_of_range_is_refused_naming_its_key(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=key):
        configfile.convert({"web": {key: value}}, ServerConfig, source="server.toml")


def test_web_without_a_certificate_stops_naming_the_settings(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fsm_server.cli import main

    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "web"])
    assert result.exit_code == 3
    assert "[web] cert_file and key_file are not set" in result.output and "--self-signed" in result.output


def test_a_self_signed_certificate_names_the_host_and_is_reused(tmp_path: Path) -> None:
    import ipaddress

    from cryptography import x509

    from fsm_server.web.serve import make_self_signed, tls_context

    files = make_self_signed(tmp_path, "192.0.2.10")
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("192.0.2.10") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert files.key.stat().st_mode & 0o077 == 0, "the private key is readable by its owner only"
    assert make_self_signed(tmp_path, "192.0.2.10").cert.read_bytes() == files.cert.read_bytes()
    assert tls_context(files).minimum_version.name == "TLSv1_2"
