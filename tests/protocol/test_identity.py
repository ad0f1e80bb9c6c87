"""The device identity rule both sides share."""

from __future__ import annotations

from fsm_protocol.identity import device_identity


def test_device_identity_is_serial_first_then_mac_then_ip() -> None:
    assert (
        device_identity(client="c", manufacturer="Ricoh", serial="e123", mac="aa", ip="1.2.3.4")[0]
        == "sn:ricoh:E123"
    )
    assert device_identity(
        client="c", manufacturer="Ricoh", serial="UNKNOWN", mac="AA-BB-CC-DD-EE-FF", ip="1.2.3.4"
    ) == ("mac:c:aa:bb:cc:dd:ee:ff", False)
    assert device_identity(client="c", manufacturer=None, serial=None, mac=None, ip="1.2.3.4") == (
        "ip:c:1.2.3.4",
        False,
    )
