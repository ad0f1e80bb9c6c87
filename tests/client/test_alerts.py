"""Critical conditions: raised once and sealed at once, quiet while active, reported when cleared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from client_fixtures import Keys, make_config

from fsm_client.alerts import Change, Policy, active_conditions, evaluate
from fsm_client.config import AlertsSection
from fsm_client.report import Sealer
from fsm_client.store import Store
from fsm_protocol.errors import ConfigError
from fsm_protocol.schema import Alert, Device, Status

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
IP = "192.0.2.20"


def reading(
    *conditions: str, at: datetime = T0, alerts: list[Alert] | None = None, reachable: bool = True
) -> Device:
    if not reachable:
        return Device(ip=IP, observed_at=at, reachability="unreachable")
    return Device(
        ip=IP,
        observed_at=at,
        serial="SN9",
        alerts=alerts or [],
        status=Status(printer="idle", conditions=list(conditions)),
    )


@pytest.fixture
def fresh_store(tmp_path: Path):
    with Store.open(tmp_path / "client.sqlite") as store:
        yield store


@pytest.fixture
def config(keys: Keys):
    return make_config(keys)


@pytest.fixture
def sealer(config, tmp_path: Path) -> Sealer:
    return Sealer.from_config(config, tmp_path)


@pytest.fixture
def poll(fresh_store: Store, sealer: Sealer, config):
    """Apply one poll reading to the store, as the daemon does."""

    def apply(device: Device, policy: Policy = Policy()) -> Change:  # noqa: B008
        return evaluate(fresh_store, sealer, config, policy, device)

    return apply


def test_default_critical_conditions_map_device_names_to_groups() -> None:
    policy = Policy()
    assert active_conditions(reading("jammed", "low_toner"), policy) == {"jam"}
    cover = Alert(code="cover_open", severity="critical")
    assert active_conditions(reading(alerts=[cover]), policy) == {"door_open"}
    assert active_conditions(reading(alerts=[Alert(code="marker_toner_empty")]), policy) == {"no_toner"}
    assert active_conditions(reading("service_requested", "no_paper"), policy) == {"service_requested"}
    assert active_conditions(reading("no_paper"), Policy(critical=("no_paper",))) == {"no_paper"}


def test_a_raw_device_code_can_be_made_critical() -> None:
    policy = Policy(critical=("marker_waste_toner_receptacle_full",))
    assert active_conditions(reading(alerts=[Alert(code="marker_waste_toner_receptacle_full")]), policy) == {
        "marker_waste_toner_receptacle_full"
    }


def test_offline_needs_the_configured_number_of_unanswered_polls() -> None:
    policy = Policy(offline_after=2)
    assert active_conditions(reading(reachable=False), policy, misses=1) == set()
    assert active_conditions(reading(reachable=False), policy, misses=2) == {"offline"}


def test_a_bad_condition_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'jam!'"):
        Policy.from_config(AlertsSection(critical=["jam!"]))
    with pytest.raises(ConfigError, match="offline_after = 0"):
        Policy.from_config(AlertsSection(offline_after=0))


def test_a_new_jam_is_sealed_at_once_with_the_reading(fresh_store: Store, poll, keys: Keys) -> None:
    change = poll(reading("jammed"))
    assert change.raised == {"jam"} and change.queued is not None
    seq = change.queued.seq
    report = keys.open(fresh_store.chunks(seq))
    assert (report.kind, report.seq, report.client_id) == ("alert", seq, "acme-hq")
    assert report.devices == [reading("jammed")]
    assert [r.device for r in fresh_store.readings(seq=seq)] == [reading("jammed")]
    [state] = fresh_store.alert_states(IP, active_only=True)
    assert (state.condition, state.raised_seq) == ("jam", seq)


def test_an_alert_that_stays_active_is_not_resent_every_poll(fresh_store: Store, poll) -> None:
    poll(reading("jammed"))
    for i in range(1, 6):
        change = poll(reading("jammed", at=T0 + timedelta(minutes=i)))
        assert not change and change.queued is None
    assert fresh_store.last_seq() == 1
    assert len(fresh_store.readings()) == 1  # quiet polls keep no reading
    assert fresh_store.alert_states(IP)[0].last_seen == T0 + timedelta(minutes=5)


def test_a_cleared_alert_is_reported(fresh_store: Store, poll, keys: Keys) -> None:
    poll(reading("jammed"))
    change = poll(reading(at=T0 + timedelta(minutes=3)))
    assert change.cleared == {"jam"} and change.queued is not None and change.queued.seq == 2
    assert keys.open(fresh_store.chunks(2)).devices[0].status.conditions == []
    [state] = fresh_store.alert_states(IP)
    assert (state.active, state.raised_seq, state.cleared_seq) == (False, 1, 2)
    # and raised again later: a new alert
    again = poll(reading("jammed", at=T0 + timedelta(minutes=9)))
    assert again.raised == {"jam"} and again.queued is not None and again.queued.seq == 3


def test_a_cleared_alert_is_not_sent_when_report_cleared_is_off(fresh_store: Store, poll) -> None:
    policy = Policy(report_cleared=False)
    poll(reading("jammed"), policy)
    change = poll(reading(at=T0 + timedelta(minutes=1)), policy)
    assert change.cleared == {"jam"} and change.queued is None
    assert fresh_store.alert_states(IP, active_only=True) == [] and fresh_store.last_seq() == 1


def test_an_unreachable_device_goes_offline_after_two_polls_and_keeps_its_jam(
    fresh_store: Store, poll
) -> None:
    poll(reading("jammed"))
    first = poll(reading(reachable=False, at=T0 + timedelta(minutes=1)))
    assert not first
    second = poll(reading(reachable=False, at=T0 + timedelta(minutes=2)))
    assert second.raised == {"offline"} and second.cleared == set()
    back = poll(reading("jammed", at=T0 + timedelta(minutes=3)))
    assert back.cleared == {"offline"} and back.raised == set()
    assert [s.condition for s in fresh_store.alert_states(IP, active_only=True)] == ["jam"]


def test_a_device_that_moves_to_another_address_takes_its_alerts_along(fresh_store: Store, poll) -> None:
    """DHCP gives a printer a new address: the same serial answering there, while the old address
    is silent, is the same printer, so its jam is not raised twice and the old address is not
    polled into an offline alert."""
    moved_ip = "192.0.2.77"
    assert poll(reading("jammed")).raised == {"jam"}
    fresh_store.mark_discovered(IP)
    assert not poll(reading(reachable=False, at=T0 + timedelta(minutes=1)))
    still = poll(
        Device(
            ip=moved_ip,
            observed_at=T0 + timedelta(minutes=5),
            serial=" sn9",
            status=Status(printer="idle", conditions=["jammed"]),
        )
    )
    assert not still and fresh_store.last_seq() == 1  # the same jam: nothing new to say
    [device] = fresh_store.devices(discovered=True)
    assert (device.ip, device.first_seen) == (moved_ip, T0)
    assert [s.condition for s in fresh_store.alert_states(moved_ip, active_only=True)] == ["jam"]
    assert fresh_store.alert_states(IP) == []
    cleared = poll(
        Device(
            ip=moved_ip, observed_at=T0 + timedelta(minutes=6), serial="SN9", status=Status(printer="idle")
        )
    )
    assert cleared.cleared == {"jam"}


def test_a_placeholder_serial_another_maker_or_an_answering_twin_is_another_device(
    fresh_store: Store, poll
) -> None:
    def answer(ip: str, serial: str, manufacturer: str) -> None:
        poll(Device(ip=ip, observed_at=T0, serial=serial, manufacturer=manufacturer))

    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"):
        poll(Device(ip=ip, observed_at=T0, reachability="unreachable"))  # all silent once
    answer("192.0.2.1", "UNKNOWN", "Brother")
    answer("192.0.2.2", "unknown", "Brother")
    answer("192.0.2.3", "X1", "Brother")
    answer("192.0.2.4", "X1", "Kyocera")
    answer("192.0.2.5", "X1", "Kyocera")  # the Kyocera at .4 answers too: two devices, one serial
    answer("192.0.2.4", "X1", "Kyocera")
    assert [d.ip for d in fresh_store.devices()] == [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
        "192.0.2.4",
        "192.0.2.5",
    ]


def test_two_conditions_at_once_make_one_alert_report(fresh_store: Store, poll) -> None:
    change = poll(reading("jammed", "door_open"))
    assert change.raised == {"jam", "door_open"} and fresh_store.last_seq() == 1
