"""Which device a reading is: the identity rule fsm-client and fsm-server share.

A device is its manufacturer + serial number; an IP or MAC change is history of the same
device, and a different serial at the same IP is a different device. Devices that report no
usable serial fall back to MAC, then IP, within their client. The server scopes every identity
to the customer of the client that reported it (``fsm_server.tenancy``): the key is unique
within one customer, never across customers.

>>> device_identity(client="c", manufacturer="HP ", serial="cn123", mac=None, ip="10.0.0.5")
('sn:hp:CN123', True)
>>> device_identity(client="c", manufacturer=None, serial=None, mac="00:11:22:AA:BB:CC", ip="x")
('mac:c:00:11:22:aa:bb:cc', False)
"""

from __future__ import annotations

#: What devices answer when they have no serial number: no identity at all.
PLACEHOLDER_SERIALS = frozenset({"0", "UNKNOWN", "N/A", "NONE"})
PLACEHOLDER_MACS = frozenset({"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"})


def device_identity(
    *, client: str, manufacturer: str | None, serial: str | None, mac: str | None, ip: str
) -> tuple[str, bool]:
    """The identity key of a reading's device and whether it is strong (serial-based)."""
    sn = (serial or "").strip().upper()
    if sn and sn not in PLACEHOLDER_SERIALS:
        return f"sn:{(manufacturer or '').strip().lower()}:{sn}", True
    m = (mac or "").strip().lower().replace("-", ":")
    if m and m not in PLACEHOLDER_MACS:
        return f"mac:{client}:{m}", False
    return f"ip:{client}:{ip}", False


__all__ = ["PLACEHOLDER_MACS", "PLACEHOLDER_SERIALS", "device_identity"]
