"""Closed vocabularies shared by the client, the server and the PMD files.

One registry each. Names are snake_case renderings of the standard names (RFC 3805
Printer-MIB textual conventions, RFC 2790 Host-Resources-MIB enumerations), so a value
a device sends maps to exactly one name here and a PMD can only use names listed here.

>>> SUPPLY_KINDS[3], SUPPLY_KINDS[21]
('toner', 'toner_cartridge')
>>> decode_error_state(bytes([0b00000101, 0b10000000]))
['no_toner', 'offline', 'input_tray_missing']
"""

from __future__ import annotations

import re

#: Canonical page-counter names. Vendor extras use the ``x_`` prefix (see is_counter_name).
COUNTERS: dict[str, str] = {
    "total": "every impression the engine made (Printer-MIB prtMarkerLifeCount or vendor total)",
    "total_black": "monochrome impressions, print + copy + fax",
    "total_color": "colour impressions, print + copy + fax (full and single/two colour)",
    "print_total": "impressions from print jobs",
    "print_black": "monochrome impressions from print jobs",
    "print_color": "colour impressions from print jobs",
    "copy_total": "impressions from copy jobs",
    "copy_black": "monochrome impressions from copy jobs",
    "copy_color": "colour impressions from copy jobs",
    "fax": "impressions of received faxes",
    "fax_sent": "pages sent by fax",
    "scan": "pages scanned (all scan jobs, including copy scans where the device counts them)",
    "duplex": "duplex (two-sided) sheets or impressions, as the device counts them",
    "sheets": "sheets of paper moved through the engine",
    "large_total": "large-format (A3/ledger) impressions",
    "large_black": "large-format monochrome impressions",
    "large_color": "large-format colour impressions",
    "a3": "A3 impressions",
    "a4": "A4 impressions",
    "a5": "A5 impressions",
    "letter": "letter impressions",
    "legal": "legal impressions",
    "ledger": "ledger/tabloid impressions",
    "power_on": "impressions since the last power-on (Printer-MIB prtMarkerPowerOnCount)",
    "jams": "paper jams",
    "length_mm": "printed media length in millimetres (label printers)",
}

_EXTRA_COUNTER = re.compile(r"^x_[a-z0-9]+(?:_[a-z0-9]+)*$")


def is_counter_name(name: str) -> bool:
    """A canonical counter name, or a vendor extra ``x_<snake_case>``."""
    return name in COUNTERS or bool(_EXTRA_COUNTER.match(name))


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).lower()


def _table(pairs: str) -> dict[int, str]:
    """Parse ``name(n) name(n) ...`` as written in the MIB into {n: snake_name}."""
    return {int(n): _snake(name) for name, n in re.findall(r"([A-Za-z]+)\((\d+)\)", pairs)}


#: prtMarkerSuppliesType (PrtMarkerSuppliesTypeTC, RFC 3805) by number.
SUPPLY_KINDS: dict[int, str] = _table(
    "other(1) unknown(2) toner(3) wasteToner(4) ink(5) inkCartridge(6) inkRibbon(7) wasteInk(8)"
    " opc(9) developer(10) fuserOil(11) solidWax(12) ribbonWax(13) wasteWax(14) fuser(15)"
    " coronaWire(16) fuserOilWick(17) cleanerUnit(18) fuserCleaningPad(19) transferUnit(20)"
    " tonerCartridge(21) fuserOiler(22) water(23) wasteWater(24) glueWaterAdditive(25)"
    " wastePaper(26) bindingSupply(27) bandingSupply(28) stitchingWire(29) shrinkWrap(30)"
    " paperWrap(31) staples(32) inserts(33) covers(34) matteToner(35) matteInk(36)"
)
#: Kinds vendor tables use that the Printer-MIB has no number for.
EXTRA_SUPPLY_KINDS: tuple[str, ...] = ("roller", "maintenance_kit", "media", "print_head")
SUPPLY_KIND_NAMES: frozenset[str] = frozenset(SUPPLY_KINDS.values()) | frozenset(EXTRA_SUPPLY_KINDS)

#: Kinds whose level is consumed colorant: they drive the colour and "low toner" logic.
COLORANT_KINDS: frozenset[str] = frozenset(
    {
        "toner",
        "toner_cartridge",
        "ink",
        "ink_cartridge",
        "ink_ribbon",
        "solid_wax",
        "ribbon_wax",
        "matte_toner",
        "matte_ink",
    }
)
#: Kinds that fill up instead of emptying (level is free space left).
WASTE_KINDS: frozenset[str] = frozenset(
    {"waste_toner", "waste_ink", "waste_wax", "waste_water", "waste_paper"}
)

#: prtMarkerSuppliesSupplyUnit (PrtMarkerSuppliesSupplyUnitTC) by number.
SUPPLY_UNITS: dict[int, str] = _table(
    "other(1) unknown(2) tenThousandthsOfInches(3) micrometers(4) impressions(7) sheets(8)"
    " hours(11) thousandthsOfOunces(12) tenthsOfGrams(13) hundrethsOfFluidOunces(14)"
    " tenthsOfMilliliters(15) feet(16) meters(17) items(18) percent(19)"
)

#: Colour names a supply may carry. Printer-MIB colorant values are free text; these are
#: what we normalise them to.
COLORS: tuple[str, ...] = (
    "black",
    "cyan",
    "magenta",
    "yellow",
    "light_cyan",
    "light_magenta",
    "photo_black",
    "matte_black",
    "gray",
    "light_gray",
    "red",
    "green",
    "blue",
    "orange",
    "violet",
    "white",
    "clear",
    "gold",
    "silver",
    "pink",
    "tri_color",
)

#: Free-text colour words (lower case, as devices write them) to COLORS names. Longest
#: phrase wins, so "light cyan" is not read as "cyan".
COLOR_WORDS: dict[str, str] = {
    "black": "black",
    "schwarz": "black",
    "noir": "black",
    "nero": "black",
    "negro": "black",
    "bk": "black",
    "k": "black",
    "mono": "black",
    "cyan": "cyan",
    "c": "cyan",
    "magenta": "magenta",
    "m": "magenta",
    "yellow": "yellow",
    "gelb": "yellow",
    "jaune": "yellow",
    "giallo": "yellow",
    "amarillo": "yellow",
    "y": "yellow",
    "light cyan": "light_cyan",
    "photo cyan": "light_cyan",
    "lc": "light_cyan",
    "light magenta": "light_magenta",
    "photo magenta": "light_magenta",
    "vivid light magenta": "light_magenta",
    "lm": "light_magenta",
    "photo black": "photo_black",
    "pk": "photo_black",
    "matte black": "matte_black",
    "mk": "matte_black",
    "gray": "gray",
    "grey": "gray",
    "light gray": "light_gray",
    "light grey": "light_gray",
    "light black": "gray",
    "light light black": "light_gray",
    "red": "red",
    "green": "green",
    "blue": "blue",
    "orange": "orange",
    "violet": "violet",
    "white": "white",
    "clear": "clear",
    "gold": "gold",
    "silver": "silver",
    "pink": "pink",
    "tri-color": "tri_color",
    "tricolor": "tri_color",
    "tri-colour": "tri_color",
    "color": "tri_color",
    "colour": "tri_color",
}

#: hrPrinterDetectedErrorState bits (RFC 2790, extended by RFC 3805), bit 0 first.
ERROR_STATE_BITS: tuple[str, ...] = (
    "low_paper",
    "no_paper",
    "low_toner",
    "no_toner",
    "door_open",
    "jammed",
    "offline",
    "service_requested",
    "input_tray_missing",
    "output_tray_missing",
    "marker_supply_missing",
    "output_near_full",
    "output_full",
    "input_tray_empty",
    "overdue_prevent_maint",
)


def decode_error_state(raw: bytes) -> list[str]:
    """Names of the set bits of an hrPrinterDetectedErrorState OCTET STRING.

    The MIB numbers bits like BITS: bit 0 is the most significant bit of the first byte
    (RFC 2790 section "hrPrinterDetectedErrorState"), so ``0x80`` is low_paper, not
    overdue_prevent_maint. Bits beyond the known ones are named ``bit_<n>``.
    """
    names: list[str] = []
    for i, byte in enumerate(raw[:8]):  # 64 bits is far more than the MIB defines
        for j in range(8):
            if byte & (0x80 >> j):
                n = i * 8 + j
                names.append(ERROR_STATE_BITS[n] if n < len(ERROR_STATE_BITS) else f"bit_{n}")
    return names


#: hrDeviceStatus (RFC 2790).
DEVICE_STATUS: dict[int, str] = _table("unknown(1) running(2) warning(3) testing(4) down(5)")
#: hrPrinterStatus (RFC 2790).
PRINTER_STATUS: dict[int, str] = _table("other(1) unknown(2) idle(3) printing(4) warmup(5)")

#: prtAlertSeverityLevel (PrtAlertSeverityLevelTC).
ALERT_SEVERITIES: dict[int, str] = _table("other(1) critical(3) warning(4) warningBinaryChangeEvent(5)")
#: prtAlertTrainingLevel (PrtAlertTrainingLevelTC).
ALERT_TRAINING: dict[int, str] = _table(
    "other(1) unknown(2) untrained(3) trained(4) fieldService(5) management(6) noInterventionRequired(7)"
)
#: prtAlertGroup (PrtAlertGroupTC).
ALERT_GROUPS: dict[int, str] = _table(
    "other(1) unknown(2) hostResourcesMIBStorageTable(3) hostResourcesMIBDeviceTable(4)"
    " generalPrinter(5) cover(6) localization(7) input(8) output(9) marker(10) markerSupplies(11)"
    " markerColorant(12) mediaPath(13) channel(14) interpreter(15) consoleDisplayBuffer(16)"
    " consoleLights(17) alert(18) finDevice(30) finSupply(31) finSupplyMediaInput(32) finAttribute(33)"
)
#: prtAlertCode (PrtAlertCodeTC).
ALERT_CODES: dict[int, str] = _table(
    "other(1) unknown(2) coverOpen(3) coverClosed(4) interlockOpen(5) interlockClosed(6)"
    " configurationChange(7) jam(8) subunitMissing(9) subunitLifeAlmostOver(10) subunitLifeOver(11)"
    " subunitAlmostEmpty(12) subunitEmpty(13) subunitAlmostFull(14) subunitFull(15)"
    " subunitNearLimit(16) subunitAtLimit(17) subunitOpened(18) subunitClosed(19)"
    " subunitTurnedOn(20) subunitTurnedOff(21) subunitOffline(22) subunitPowerSaver(23)"
    " subunitWarmingUp(24) subunitAdded(25) subunitRemoved(26) subunitResourceAdded(27)"
    " subunitResourceRemoved(28) subunitRecoverableFailure(29) subunitUnrecoverableFailure(30)"
    " subunitRecoverableStorageError(31) subunitUnrecoverableStorageError(32)"
    " subunitMotorFailure(33) subunitMemoryExhausted(34) subunitUnderTemperature(35)"
    " subunitOverTemperature(36) subunitTimingFailure(37) subunitThermistorFailure(38)"
    " doorOpen(501) doorClosed(502) poweredUp(503) poweredDown(504) printerNMSReset(505)"
    " printerManualReset(506) printerReadyToPrint(507)"
    " inputMediaTrayMissing(801) inputMediaSizeChange(802) inputMediaWeightChange(803)"
    " inputMediaTypeChange(804) inputMediaColorChange(805) inputMediaFormPartsChange(806)"
    " inputMediaSupplyLow(807) inputMediaSupplyEmpty(808) inputManualInputRequest(809)"
    " inputTrayPositionFailure(810) inputTrayElevationFailure(811) inputCannotFeedSizeSelected(812)"
    " outputMediaTrayMissing(901) outputMediaTrayAlmostFull(902) outputMediaTrayFull(903)"
    " outputMailboxSelectFailure(904)"
    " markerFuserUnderTemperature(1001) markerFuserOverTemperature(1002)"
    " markerFuserTimingFailure(1003) markerFuserThermistorFailure(1004)"
    " markerAdjustingPrintQuality(1005)"
    " markerTonerEmpty(1101) markerInkEmpty(1102) markerPrintRibbonEmpty(1103)"
    " markerTonerAlmostEmpty(1104) markerInkAlmostEmpty(1105) markerPrintRibbonAlmostEmpty(1106)"
    " markerWasteTonerReceptacleAlmostFull(1107) markerWasteInkReceptacleAlmostFull(1108)"
    " markerWasteTonerReceptacleFull(1109) markerWasteInkReceptacleFull(1110)"
    " markerOpcLifeAlmostOver(1111) markerOpcLifeOver(1112) markerDeveloperAlmostEmpty(1113)"
    " markerDeveloperEmpty(1114) markerTonerCartridgeMissing(1115)"
    " mediaPathMediaTrayMissing(1301) mediaPathMediaTrayAlmostFull(1302)"
    " mediaPathMediaTrayFull(1303) mediaPathCannotDuplexMediaSelected(1304)"
    " interpreterMemoryIncrease(1501) interpreterMemoryDecrease(1502)"
    " interpreterCartridgeAdded(1503) interpreterCartridgeDeleted(1504)"
    " interpreterResourceAdded(1505) interpreterResourceDeleted(1506)"
    " interpreterResourceUnavailable(1507) interpreterComplexPageEncountered(1509)"
    " alertRemovalOfBinaryChangeEntry(1801)"
)


#: Condition groups: one name for a problem, with every name a device may report it under (error-state
#: bits and prtAlertCodes). The client's ``[alerts] critical`` and the server's rules use the same groups.
CONDITION_GROUPS: dict[str, frozenset[str]] = {
    "jam": frozenset({"jammed", "jam"}),
    "no_toner": frozenset({"no_toner", "marker_toner_empty", "marker_ink_empty"}),
    "service_requested": frozenset({"service_requested", "subunit_unrecoverable_failure"}),
    "offline": frozenset({"offline"}),  # plus: the device did not answer `offline_after` polls
    "door_open": frozenset({"door_open", "cover_open", "interlock_open"}),
    "no_paper": frozenset({"no_paper", "input_media_supply_empty"}),
    "output_full": frozenset({"output_full", "output_media_tray_full"}),
    "supply_missing": frozenset({"marker_supply_missing", "marker_toner_cartridge_missing"}),
}


def alert_code_name(code: int) -> str:
    """The PrtAlertCodeTC name of ``code``, or ``code_<n>`` for a value the MIB lacks."""
    return ALERT_CODES.get(code, f"code_{code}")


__all__ = [
    "ALERT_CODES",
    "ALERT_GROUPS",
    "ALERT_SEVERITIES",
    "ALERT_TRAINING",
    "COLORANT_KINDS",
    "COLORS",
    "COLOR_WORDS",
    "CONDITION_GROUPS",
    "COUNTERS",
    "DEVICE_STATUS",
    "ERROR_STATE_BITS",
    "EXTRA_SUPPLY_KINDS",
    "PRINTER_STATUS",
    "SUPPLY_KINDS",
    "SUPPLY_KIND_NAMES",
    "SUPPLY_UNITS",
    "WASTE_KINDS",
    "alert_code_name",
    "decode_error_state",
    "is_counter_name",
]
