"""One realistic instance of every payload type (shared by the telemetry tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.telemetry.payloads import (
    PAYLOAD_TYPES,
    Alarm,
    Alarms,
    AntennaInfo,
    AntennaState,
    Catalog,
    CatalogEntry,
    CommandError,
    ComponentHealth,
    CurrentTrack,
    Event,
    Health,
    Info,
    Link,
    PassCurrent,
    PassEvent,
    Payload,
    Pointing,
    RadioInfo,
    RadioState,
    Reply,
    Schedule,
    ScheduledTrack,
    Site,
    Status,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def samples() -> list[Payload]:
    """At least one payload of every type in PAYLOAD_TYPES (some types twice)."""
    out: list[Payload] = [
        Status(state="ready"),
        Info(
            version="0.1.0",
            station_id="gs1",
            name="Weilheim",
            site=Site(lat_deg=47.88, lon_deg=11.08, alt_m=600.0),
            antennas=[
                AntennaInfo(
                    id="a1",
                    rotator="gs232b",
                    beamwidth_deg=12.0,
                    az_min_deg=0.0,
                    az_max_deg=450.0,
                    el_min_deg=0.0,
                    el_max_deg=180.0,
                )
            ],
            radios=[RadioInfo(id="r1", model="IC-9700", capabilities=["satmode", "ci-v"])],
        ),
        Health(
            components=[
                ComponentHealth(
                    name="rotator a1", kind="device", state="ok", counters={"retries": 2}
                ),
                ComponentHealth(
                    name="tle refresh", kind="task", state="degraded", last_error="HTTP 503"
                ),
            ]
        ),
        Alarms(
            alarms=[
                Alarm(
                    id="tle-stale",
                    severity="warning",
                    since=T0 - timedelta(hours=3),
                    message="TLE of 25544 is 15 days old",
                    source="catalog",
                )
            ]
        ),
        Schedule(
            generated_at=T0,
            tracks=[
                ScheduledTrack(
                    antenna="a1",
                    norad_id=25544,
                    name="ISS (ZARYA)",
                    aos=T0 + timedelta(minutes=10),
                    tca=T0 + timedelta(minutes=15),
                    los=T0 + timedelta(minutes=20),
                    max_el_deg=63.2,
                    weight=1.0,
                )
            ],
        ),
        Catalog(
            stale_after_days=14.0,
            satellites=[
                CatalogEntry(
                    norad_id=25544,
                    name="ISS (ZARYA)",
                    tle_epoch=T0 - timedelta(days=1),
                    age_days=1.0,
                    stale=False,
                )
            ],
        ),
        PassCurrent(
            antennas=[
                CurrentTrack(
                    antenna="a1",
                    norad_id=25544,
                    name="ISS (ZARYA)",
                    aos=T0,
                    tca=T0 + timedelta(minutes=5),
                    los=T0 + timedelta(minutes=10),
                    max_el_deg=63.2,
                ),
                CurrentTrack(antenna="a2"),
            ]
        ),
        AntennaState(antenna="a1", mode="tracking", az_deg=371.5, el_deg=23.4, norad_id=25544),
        AntennaState(antenna="a2", mode="parked", az_deg=0.0, el_deg=90.0),
        RadioState(
            radio="r1",
            downlink_hz=145_800_000.0,
            uplink_hz=437_800_000.0,
            downlink_mode="FM",
            uplink_mode="FM",
            satellite_mode=True,
        ),
        Pointing(
            antenna="a1",
            mode="tracking",
            norad_id=25544,
            target_az_deg=11.5,
            target_el_deg=23.4,
            commanded_az_deg=371.6,
            commanded_el_deg=23.5,
            actual_az_deg=371.4,
            actual_el_deg=23.3,
            error_deg=0.12,
            period_s=0.2,
        ),
        Pointing(
            antenna="a2",
            mode="idle",
            norad_id=None,
            target_az_deg=None,
            target_el_deg=None,
            commanded_az_deg=None,
            commanded_el_deg=None,
            actual_az_deg=0.0,
            actual_el_deg=90.0,
            error_deg=None,
            period_s=1.0,
        ),
        Link(
            antenna="a1",
            norad_id=25544,
            range_km=812.3,
            range_rate_km_s=-5.21,
            doppler_down_hz=2533.0,
            doppler_up_hz=-7608.0,
            downlink_hz=145_802_533.0,
            uplink_hz=437_792_392.0,
            snr_predicted_db=18.2,
            snr_measured_db=16.9,
            margin_db=6.9,
            locked=True,
            period_s=1.0,
        ),
        PassEvent(antenna="a1", norad_id=25544, event="aos", az_deg=10.0, el_deg=0.0),
        PassEvent(antenna="a1", norad_id=25544, event="aborted", reason="operator abort"),
        PassEvent(antenna="a1", norad_id=25544, event="handover", to_antenna="a2"),
        Event(
            kind="tle_refreshed",
            message="42 TLEs refreshed",
            source="catalog",
            details={"count": 42, "url": "file:///x.tle", "ok": True, "age_days": 0.5, "x": None},
        ),
        Reply(request_id="op-1", verb="stow", ok=True, result={"antennas": ["a1", "a2"]}),
        Reply(
            request_id=None,
            verb="invalid",
            ok=False,
            error=CommandError(code="unknown_verb", message="unknown command verb 'x'"),
        ),
    ]
    covered = {type(p) for p in out}
    missing = [cls.__name__ for cls in PAYLOAD_TYPES if cls not in covered]
    assert not missing, f"samples() lacks {missing}"
    return out
