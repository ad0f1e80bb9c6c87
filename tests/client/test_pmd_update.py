"""PMD updates from a real HTTPS server on loopback (TLS from a test CA), a synced directory,
and the daily schedule driven by a controllable clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from pmd_bundle_helpers import Publisher, entries_of, make_config, marked, snapshot, zip_of

from fsm_client.cli import main
from fsm_client.errors import PmdBundleError, PmdUpdateError
from fsm_client.pmd.distribution.active import bundle_label, load_active_pool
from fsm_client.pmd.distribution.bundle import Limits
from fsm_client.pmd.distribution.sets import PmdSets
from fsm_client.pmd.distribution.update import RETRY_AFTER, Updater, fetch_url, install_from, load_state
from fsm_devtools.peers.https import HttpsServer, Redirect, TestCa, Truncated
from fsm_protocol.errors import ConfigError

DAY1 = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def https_server(test_ca: TestCa) -> Iterator[HttpsServer]:
    with HttpsServer(test_ca) as server:
        yield server


@pytest.fixture
def server(https_server: HttpsServer) -> HttpsServer:
    """The module's HTTPS server with no routes and an empty request log."""
    https_server.routes.clear()
    https_server.requests.clear()
    return https_server


@pytest.fixture
def publisher(tmp_path: Path) -> Publisher:
    return Publisher(tmp_path / "publisher")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, hour: int, minute: int = 0, day: int = 0) -> datetime:
        self.now = DAY1 + timedelta(days=day, hours=hour, minutes=minute)
        return self.now


def active_version(data_dir: Path) -> int | None:
    current = PmdSets.in_data_dir(data_dir).current()
    return current.version if current else None


def test_daily_update_from_https_follows_the_clock(
    server: HttpsServer, test_ca: TestCa, publisher: Publisher, data_dir: Path
) -> None:
    server.routes["/pmd/bundle.zip"] = publisher.bundle(1, marked(1))
    config = make_config(
        [publisher.pub_text], url=server.url("/pmd/bundle.zip"), ca_file=str(test_ca.ca_file), hour=4
    )
    clock = Clock(DAY1)
    updater = Updater(config, data_dir, clock=clock)

    clock.set(2, 30)  # never checked before: the first call checks at once
    result = updater.update_if_due()
    assert (result.outcome, result.version, active_version(data_dir)) == ("installed", 1, 1), result.message
    assert server.requests == ["/pmd/bundle.zip"]

    server.routes["/pmd/bundle.zip"] = publisher.bundle(2, marked(2))  # the publisher ships version 2
    for hour, minute in ((3, 0), (3, 59)):
        clock.set(hour, minute)
        assert updater.update_if_due().outcome == "not_due"
    assert len(server.requests) == 1 and active_version(data_dir) == 1
    assert updater.next_due(clock.set(3, 59)) == DAY1 + timedelta(hours=4)

    clock.set(4, 0)  # the daily slot
    result = updater.update_if_due()
    assert (result.outcome, result.version, active_version(data_dir)) == ("installed", 2, 2)
    clock.set(11, 0)
    assert updater.update_if_due().outcome == "not_due"

    clock.set(4, 0, day=1)  # the next day: same bundle, nothing to do
    result = updater.update_if_due()
    assert result.outcome == "up_to_date" and "not newer than 2" in result.message
    assert len(server.requests) == 3 and active_version(data_dir) == 2
    state = load_state(data_dir)
    assert state.last_due == DAY1 + timedelta(days=1, hours=4) and state.last_outcome == "up_to_date"

    clock.set(9, 0, day=5)  # off for days: one catch-up check, not one per missed day
    assert updater.update_if_due().outcome == "up_to_date"
    assert updater.update_if_due().outcome == "not_due"
    assert len(server.requests) == 4
    assert {
        m.read_text().rsplit("# set ", 1)[-1].strip()
        for m in load_active_pool(config, data_dir).files.values()
    } == {"2"}


def test_daily_hour_is_read_in_the_schedule_time_zone(
    server: HttpsServer, test_ca: TestCa, publisher: Publisher, data_dir: Path
) -> None:
    server.routes["/b.zip"] = publisher.bundle(1, marked(1))
    config = make_config([publisher.pub_text], url=server.url("/b.zip"), ca_file=str(test_ca.ca_file), hour=4)
    config = msgspec.structs.replace(
        config, schedule=msgspec.structs.replace(config.schedule, timezone="Europe/Berlin")
    )
    clock = Clock(DAY1)
    updater = Updater(config, data_dir, clock=clock)
    updater.update_if_due(clock.set(2, 0))  # first check
    assert updater.update_if_due(clock.set(3, 30)).outcome == "up_to_date"  # 04:30 in Berlin (UTC+1)
    assert updater.update_if_due(clock.set(3, 45)).outcome == "not_due"


def test_untrusted_certificate_is_refused_with_a_hint_naming_ca_file(
    server: HttpsServer, publisher: Publisher, data_dir: Path
) -> None:
    server.routes["/b.zip"] = publisher.bundle(1, marked(1))
    config = make_config([publisher.pub_text])  # no ca_file: the system CAs do not know the test CA
    with pytest.raises(PmdUpdateError, match=r"TLS certificate of 127\.0\.0\.1 is not trusted") as info:
        install_from(server.url("/b.zip"), config=config, data_dir=data_dir)
    assert "ca_file" in info.value.hint
    assert active_version(data_dir) is None and server.requests == []  # refused in the handshake


def test_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    other = TestCa.create(tmp_path / "ca", server_names=["pmd.example.org"])  # a trusted CA, wrong name
    with (
        HttpsServer(other, {"/b.zip": b"x"}) as server,
        pytest.raises(PmdUpdateError, match=r"not trusted: .*mismatch") as info,
    ):
        fetch_url(server.url("/b.zip"), ca_file=other.ca_file)
    assert server.requests == []
    assert "ca_file" in info.value.hint


def test_plain_http_is_refused_also_behind_a_redirect(
    server: HttpsServer, test_ca: TestCa, publisher: Publisher
) -> None:
    with pytest.raises(ConfigError, match="is not https://"):
        fetch_url("http://127.0.0.1:9/b.zip")
    data = publisher.bundle(1, marked(1))
    server.routes.update(
        {
            "/b.zip": data,
            "/moved": Redirect(server.url("/b.zip")),
            "/downgrade": Redirect(server.url("/b.zip").replace("https:", "http:")),
        }
    )
    assert fetch_url(server.url("/moved"), ca_file=test_ca.ca_file) == data  # https -> https is followed
    with pytest.raises(PmdUpdateError, match=r"redirects to 'http://.*not https://"):
        fetch_url(server.url("/downgrade"), ca_file=test_ca.ca_file)


def test_truncated_download_is_refused_and_retried_within_the_hour(
    server: HttpsServer, test_ca: TestCa, publisher: Publisher, data_dir: Path
) -> None:
    good = publisher.bundle(1, marked(1))
    server.routes["/b.zip"] = good
    config = make_config([publisher.pub_text], url=server.url("/b.zip"), ca_file=str(test_ca.ca_file))
    install_from(server.url("/b.zip"), config=config, data_dir=data_dir)
    before = snapshot(data_dir)

    v2 = publisher.bundle(2, marked(2))
    server.routes["/b.zip"] = Truncated(v2[: len(v2) // 2], declared=len(v2))
    with pytest.raises(PmdUpdateError, match=rf"truncated.* of {len(v2)}"):
        install_from(server.url("/b.zip"), config=config, data_dir=data_dir)
    assert snapshot(data_dir) == before

    clock = Clock(DAY1)
    updater = Updater(config, data_dir, clock=clock)
    result = updater.update_if_due(clock.set(5, 0))
    assert result.outcome == "failed" and "truncated" in result.message
    assert result.reason == "pmd_update_failed"
    assert snapshot(data_dir) == before
    assert updater.update_if_due(clock.set(5, 30)).outcome == "not_due"  # waits RETRY_AFTER
    server.routes["/b.zip"] = v2  # the server is fixed
    result = updater.update_if_due(clock.set(5, 0) + RETRY_AFTER)
    assert result.outcome == "installed" and active_version(data_dir) == 2


def test_oversized_download_is_refused_while_downloading(
    server: HttpsServer, test_ca: TestCa, publisher: Publisher, data_dir: Path
) -> None:
    data = publisher.bundle(1, marked(1))
    server.routes["/b.zip"] = data
    with pytest.raises(PmdBundleError, match=rf"offers {len(data)} bytes, over the 1000"):
        fetch_url(server.url("/b.zip"), ca_file=test_ca.ca_file, max_bytes=1000)
    config = make_config([publisher.pub_text], ca_file=str(test_ca.ca_file))
    with pytest.raises(PmdBundleError, match="over the 2000"):
        install_from(
            server.url("/b.zip"), config=config, data_dir=data_dir, limits=Limits(max_bundle_bytes=2000)
        )
    assert active_version(data_dir) is None


def test_a_tampered_bundle_from_the_server_is_refused_and_handled_for_the_day(
    server: HttpsServer, test_ca: TestCa, publisher: Publisher, data_dir: Path
) -> None:
    entries = [
        (n, d + b"#" if n == "pmd/hp.toml" else d) for n, d in entries_of(publisher.bundle(1, marked(1)))
    ]
    server.routes["/b.zip"] = zip_of(entries)
    config = make_config([publisher.pub_text], url=server.url("/b.zip"), ca_file=str(test_ca.ca_file))
    clock = Clock(DAY1)
    updater = Updater(config, data_dir, clock=clock)
    result = updater.update_if_due(clock.set(5, 0))
    assert result.outcome == "failed" and "sha256" in result.message
    assert result.reason == "pmd_bundle_rejected"
    assert active_version(data_dir) is None
    assert updater.update_if_due(clock.set(7, 0)).outcome == "not_due"  # no hourly retry of a bad bundle
    assert updater.update_if_due(clock.set(4, 0, day=1)).outcome == "failed"


def test_directory_source_installs_the_newest_valid_bundle(
    tmp_path: Path, publisher: Publisher, data_dir: Path
) -> None:
    synced = tmp_path / "synced"
    synced.mkdir()
    (synced / "pmd-0001.zip").write_bytes(publisher.bundle(1, marked(1)))
    (synced / "pmd-0003.zip").write_bytes(publisher.bundle(3, marked(3)))
    stranger = Publisher(tmp_path / "stranger")
    (synced / "pmd-0009.zip").write_bytes(stranger.bundle(9, marked(9)))
    config = make_config([publisher.pub_text], directory=str(synced))
    clock = Clock(DAY1)
    result = Updater(config, data_dir, clock=clock).update_if_due(clock.set(6))
    assert result.outcome == "installed" and result.version == 3
    assert "pmd-0009.zip" in result.message and "not pinned" in result.message
    assert active_version(data_dir) == 3
    # reports from now on name it: its set's name, which starts with its version
    label = bundle_label(data_dir)
    assert label == PmdSets.in_data_dir(data_dir).current_name() and label.startswith(f"v{3:020d}-")


def test_url_and_directory_together_are_a_config_error(publisher: Publisher, data_dir: Path) -> None:
    config = make_config([publisher.pub_text], url="https://127.0.0.1/b.zip", directory="/tmp")
    result = Updater(config, data_dir).update_if_due(DAY1)
    assert result.outcome == "failed" and "both url and directory" in result.message


def test_cli_update_from_url_and_status_show_the_schedule(
    tmp_path: Path, server: HttpsServer, test_ca: TestCa, publisher: Publisher
) -> None:
    server.routes["/b.zip"] = publisher.bundle(5, marked(5))
    config_file = tmp_path / "client.toml"
    config_file.write_text(
        f'[pmd.update]\nurl = "{server.url("/b.zip")}"\nca_file = "{test_ca.ca_file}"\n'
        f'publisher_keys = ["{publisher.pub_file}"]\nhour = 3\n'
    )
    base = ["--config", str(config_file), "--data-dir", str(tmp_path / "data"), "pmd"]
    runner = CliRunner()
    r = runner.invoke(main, [*base, "update", server.url("/b.zip")])
    assert r.exit_code == 0 and "installed PMD bundle version 5" in r.output, r.output
    r = runner.invoke(main, [*base, "update", "--json"])  # the configured url, now
    assert r.exit_code == 0 and json.loads(r.output)["outcome"] == "up_to_date", r.output
    st = json.loads(runner.invoke(main, [*base, "status", "--json"]).output)
    assert st["active"]["version"] == 5 and st["active"]["source"] == server.url("/b.zip")
    assert st["update"]["source"] == server.url("/b.zip") and st["update"]["next_check"]

    bad = tmp_path / "bad.toml"
    bad.write_text(
        f'[pmd.update]\nurl = "{server.url("/b.zip")}"\npublisher_keys = ["{publisher.pub_file}"]\n'
    )
    r = runner.invoke(
        main,
        ["--config", str(bad), "--data-dir", str(tmp_path / "d2"), "pmd", "update", server.url("/b.zip")],
    )
    assert r.exit_code == 1 and "not trusted" in r.output and "hint:" in r.output and "ca_file" in r.output
