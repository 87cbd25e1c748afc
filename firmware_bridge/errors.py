"""The error tree of the HAL. Every error a caller may catch derives from ``BridgeError``.

::

    BridgeError
    ├── TransportError               the byte pipe failed
    │   ├── TransportClosed          the peer or device went away (b"" read, EIO, ENXIO)
    │   ├── TransportTimeout         no bytes within the allowed time
    │   └── TransportUrlError        a transport URL that cannot be opened as written
    ├── ProtocolError                bytes that do not fit the protocol
    │   ├── LocalProtocolError       we tried to encode something the protocol cannot carry
    │   └── RemoteProtocolError      the device sent something we cannot accept
    └── DeviceError                  the device itself is not doing what it should
        ├── DeviceRejected           the device answered with an error code (``code`` kept)
        ├── DeviceFault              declared faulted after repeated failures
        ├── DeviceStalled            commanded but not moving
        └── LimitError               a target outside the device's limits (never clamped)
"""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "DeviceError",
    "DeviceFault",
    "DeviceRejected",
    "DeviceStalled",
    "LimitError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "TransportClosed",
    "TransportError",
    "TransportTimeout",
    "TransportUrlError",
]


class BridgeError(Exception):
    """Base of every firmware_bridge error."""


class TransportError(BridgeError):
    """The byte transport failed."""


class TransportClosed(TransportError):
    """The transport is closed: the peer hung up or the device vanished."""


class TransportTimeout(TransportError):
    """No bytes arrived within the allowed time."""


class TransportUrlError(TransportError, ValueError):
    """A transport URL that cannot be opened as written."""


class ProtocolError(BridgeError):
    """Bytes that do not fit the protocol."""


class LocalProtocolError(ProtocolError, ValueError):
    """We asked a codec to encode something the protocol cannot carry."""


class RemoteProtocolError(ProtocolError):
    """The device sent bytes we cannot accept. ``data`` holds the offending bytes."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class DeviceError(BridgeError):
    """The device is not doing what it should."""


class DeviceRejected(DeviceError):
    """The device answered with an error (``code`` is the device's own code, e.g. RPRT -1)."""

    def __init__(self, message: str, code: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code


class DeviceFault(DeviceError):
    """The device was declared faulted after repeated failures."""


class DeviceStalled(DeviceError):
    """An axis was commanded but is not moving."""


class LimitError(DeviceError, ValueError):
    """A target outside the device's limits. Targets are never silently clamped."""
