"""A snapshot of the device registry (AV-2, AV-10), for the rules and for ingest. Pure.

It lives with the rules, not with the registry that reads it from the catalog, so that a
rule (and a worker that runs one) takes the snapshot as an argument and no I/O comes along.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.people import DEVICE_RETIRED, DeviceEventRecord, normalize_serial

DEVICE_REGISTERED = "registered"
DEVICE_UNKNOWN = "unknown"
DEVICE_NO_SERIAL = "no_serial"


class DeviceIndex:
    """A snapshot of the device registry for linking files to devices. Pure lookups."""

    __slots__ = ("_by_serial",)

    def __init__(self, devices: Iterable[DeviceEventRecord] = ()) -> None:
        self._by_serial = {d.serial: d for d in devices}

    def lookup(self, serial: str | None) -> DeviceEventRecord | None:
        """The registered device with this serial (any case/spacing), or None."""
        if not serial or not serial.strip():
            return None
        return self._by_serial.get(normalize_serial(serial))

    def classify(self, serial: str | None) -> str:
        """registered | retired | unknown (a serial not in the registry) | no_serial."""
        if not serial or not serial.strip():
            return DEVICE_NO_SERIAL
        d = self.lookup(serial)
        if d is None:
            return DEVICE_UNKNOWN
        return DEVICE_RETIRED if d.status == DEVICE_RETIRED else DEVICE_REGISTERED

    def is_unknown(self, serial: str | None) -> bool:
        """True when a recording's serial names no registered device (or it has none)."""
        return self.classify(serial) in (DEVICE_UNKNOWN, DEVICE_NO_SERIAL)

    def __len__(self) -> int:
        return len(self._by_serial)
