"""Serve simulator twins to other programs: the entry point of ``groundlink sim``.

::

    served = await serve_simulators("gs232b", None, pty=True, tcp=None, clock=SystemClock())
    print(served)            # {"rotator": "/dev/pts/5"}
    ...                      # rotctl -m 603 -r /dev/pts/5 -s 9600 P 180 45
    await served.stop()

With ``tcp=(host, port)`` each twin also listens on TCP: the rotator on ``port``, the radio
on ``port + 1`` (both on free ports when ``port`` is 0). A twin that speaks a network protocol
(``rotctld``) is served on TCP only. When a twin is served both ways its TCP endpoint is
under ``"<role>_tcp"``.
"""

from __future__ import annotations

from typing import Any, Self

from firmware_bridge.clock import Clock
from firmware_bridge.simulators.base import SimServer, Twin, create_simulator

__all__ = ["ServedSimulators", "serve_simulators"]


class ServedSimulators(dict[str, str]):
    """Endpoints by role (``"rotator"``, ``"radio"``, ``"<role>_tcp"``), plus what serves them."""

    def __init__(self) -> None:
        """Start empty."""
        super().__init__()
        self.twins: dict[str, Twin] = {}
        """The twins by role (for fault injection and true positions)."""
        self.servers: list[SimServer] = []
        """Every server started, in order."""

    async def stop(self) -> None:
        """Stop every server (closing ptys and sockets); idempotent."""
        servers, self.servers = self.servers, []
        for server in reversed(servers):
            await server.close()

    async def __aenter__(self) -> Self:
        """Use as a context manager; everything stops on exit."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop every server."""
        await self.stop()


async def serve_simulators(
    rotator: str | None,
    radio: str | None,
    *,
    pty: bool,
    tcp: tuple[str, int] | None,
    clock: Clock,
    slew_az_deg_s: float | None = None,
    slew_el_deg_s: float | None = None,
) -> ServedSimulators:
    """Start the named twins (None: not that one) on ptys and/or TCP; see the module doc.

    ``slew_*_deg_s`` override the rotator's slew rates. Returns the endpoints (a dict) with a
    ``stop()`` method; on any error, whatever was started is stopped again.
    """
    if rotator is None and radio is None:
        raise ValueError("serve_simulators: name a rotator and/or a radio simulator")
    if not pty and tcp is None:
        raise ValueError(
            "serve_simulators: nothing to serve on; pass pty=True and/or tcp=(host, port)"
        )
    if tcp is not None and not (isinstance(tcp[1], int) and 0 <= tcp[1] <= 65534):
        raise ValueError(f"serve_simulators: tcp port {tcp[1]!r} must be within 0..65534")
    served = ServedSimulators()
    rotator_options: dict[str, Any] = {}
    if slew_az_deg_s is not None:
        rotator_options["az_rate_deg_s"] = slew_az_deg_s
    if slew_el_deg_s is not None:
        rotator_options["el_rate_deg_s"] = slew_el_deg_s
    roles: tuple[tuple[str, str | None, dict[str, Any], int], ...] = (
        ("rotator", rotator, rotator_options, 0),
        ("radio", radio, {}, 1),
    )
    try:
        for role, name, options, port_offset in roles:
            if name is None:
                continue
            twin = create_simulator(role, name, clock=clock, **options)
            served.twins[role] = twin
            on_pty = pty and "pty" in twin.transports
            on_tcp = tcp is not None and "tcp" in twin.transports
            if not (on_pty or on_tcp):
                ways = " or ".join(sorted(twin.transports - {"loop"}))
                raise ValueError(
                    f"{role} simulator {name!r} cannot be served that way; it is served over {ways}"
                    + (" (pass tcp=(host, port))" if "tcp" in twin.transports else "")
                )
            if on_pty:
                server: SimServer = await twin.serve_pty()
                served.servers.append(server)
                served[role] = server.endpoint
            if on_tcp:
                assert tcp is not None
                host, port = tcp
                server = await twin.serve_tcp(host, port + port_offset if port else 0)
                served.servers.append(server)
                served[f"{role}_tcp" if role in served else role] = server.endpoint
    except BaseException:
        await served.stop()
        raise
    return served
