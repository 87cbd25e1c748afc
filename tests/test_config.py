"""Config loading: the example configs load; every error names file, key, value and rule."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from controller.config import ConfigError, load_config, load_station_list
from controller.daemon_config import DaemonConfig, daemon_config_of
from controller.errors import ConfigError as ErrorsConfigError
from controller.run_cmd import check_config
from controller.tracking.config import PointingSettings, TrackingConfig, load_tracking_config

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


GOOD = """
[station]
id = "t1"
[station.site]
lat_deg = 10.0
lon_deg = 20.0
"""


def test_simulated_config_loads() -> None:
    """configs/simulated.toml is valid and its TLE paths resolve next to the file."""
    cfg = load_config(ROOT / "configs" / "simulated.toml")
    assert cfg.station.id == "demo"
    assert [a.id for a in cfg.antennas] == ["ant1", "ant2"]
    assert all(p.is_file() for p in cfg.catalog.tle_files)


def test_seed_station_list_loads() -> None:
    """seeds/stations.toml loads as a list of stations with their masks."""
    stations = load_station_list(ROOT / "seeds" / "stations.toml")
    assert {s.country for s in stations} >= {"JP", "DE"}
    assert any(not s.site.mask.is_flat for s in stations)


def test_minimal_config_uses_defaults(tmp_path: Path) -> None:
    """A station with only a site gets a flat 0-degree mask and no antennas."""
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.station.site.mask.max_el_deg == 0.0
    assert cfg.antennas == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[station.site]\nlat_deg = 95.0\nlon_deg = 0.0\n", "station.site.lat_deg = 95.0"),
        ("[bogus]\nx = 1\n", "bogus"),
    ],
)
def test_errors_name_key_and_value(tmp_path: Path, extra: str, expected: str) -> None:
    """An out-of-range value or unknown table is reported with its dotted key and value."""
    text = '[station]\nid = "t1"\n' + extra if "station.site" in extra else GOOD + extra
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    message = str(info.value)
    assert str(tmp_path / "station.toml") in message
    assert expected in message


def test_inverted_rotator_limits_rejected(tmp_path: Path) -> None:
    """az_min above az_max is an error naming the range."""
    text = (
        GOOD
        + """
[[antennas]]
id = "a1"
[antennas.rotator]
driver = "gs232b"
az_min_deg = 360.0
az_max_deg = 0.0
"""
    )
    with pytest.raises(ConfigError, match=r"antennas\.0\.rotator.*az range 360.0\.\.0.0"):
        load_config(_write(tmp_path, text))


def test_radio_on_unknown_antenna_rejected(tmp_path: Path) -> None:
    """A radio wired to an antenna that does not exist is named with the known ids."""
    text = (
        GOOD
        + """
[[radios]]
id = "r1"
driver = "ic9700"
antenna = "nope"
"""
    )
    with pytest.raises(ConfigError, match="antenna 'nope' is not one of"):
        load_config(_write(tmp_path, text))


def test_missing_tle_file_and_bad_toml(tmp_path: Path) -> None:
    """A missing element file and a TOML syntax error each get a precise message."""
    with pytest.raises(ConfigError, match=r"catalog\.tle_files.*file not found"):
        load_config(_write(tmp_path, GOOD + '[catalog]\ntle_files = ["missing.tle"]\n'))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[station\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")


# -- the example station, [daemon], [tracking], environment overrides ------------------

EXAMPLE = ROOT / "configs" / "station.example.toml"
ANTENNA = """
[[antennas]]
id = "a1"
[antennas.rotator]
driver = "gs232b"
url = "serial:///dev/serial/by-id/usb-FTDI-if00-port0?baud=9600"
az_max_deg = 450.0
"""


def test_example_station_loads_without_its_devices_or_files() -> None:
    """station.example.toml loads here although its serial devices, TLS files and cache do
    not exist (only opening them would fail); its tables reach the models."""
    cfg = load_config(EXAMPLE, env={})
    [antenna] = cfg.antennas
    assert antenna.rotator.url.startswith("serial:///dev/serial/by-id/")
    assert not Path(antenna.rotator.url.removeprefix("serial://").split("?")[0]).exists()
    assert all(r.url.startswith("serial:///dev/serial/by-id/") for r in cfg.radios)
    assert cfg.mqtt.address.tls
    assert cfg.mqtt.ca_file == Path("/etc/groundlink/tls/ca.crt")
    assert not cfg.mqtt.ca_file.exists()
    assert cfg.catalog.urls[0].startswith("https://celestrak.org/")
    assert cfg.daemon.metrics.enabled
    assert cfg.daemon.clock.refuse_transmit
    rs44 = cfg.tracking.satellite(44909)
    assert rs44.transponder is not None
    assert rs44.transponder.kind == "inverting"
    assert rs44.bandwidth_hz == 2700.0
    assert cfg.tracking.antenna("vu1").g_over_t_db_k == -18.0
    # The ISS frequencies come from [[satellites]] into its link-budget entry.
    assert cfg.tracking.satellite(25544).downlink_hz == 145.8e6
    assert cfg.tracking.satellite(25544).eirp_dbw == 7.0


@pytest.mark.parametrize("name", ["simulated.toml", "station.example.toml"])
def test_check_config_accepts_the_shipped_configs(name: str) -> None:
    """groundlink check-config finds no problem in either shipped config."""
    out = io.StringIO()
    assert check_config(ROOT / "configs" / name, out=out) == 0, out.getvalue()
    assert out.getvalue().strip().endswith(": ok")


def test_simulated_daemon_and_tracking_tables_are_the_defaults() -> None:
    """The tables written out in simulated.toml keep the demo as it was (defaults)."""
    cfg = load_config(ROOT / "configs" / "simulated.toml", env={})
    settings = daemon_config_of(cfg)
    assert settings.model_copy(update={"tracking": TrackingConfig()}) == DaemonConfig()
    assert settings.tracking.pointing == PointingSettings()
    assert settings.tracking.satellite(80001).downlink_hz == 437.5e6
    assert settings.tracking.satellite(80001).uplink_hz == 145.9e6


def test_daemon_config_of_carries_daemon_and_top_level_tracking(tmp_path: Path) -> None:
    """[daemon] and the top-level [tracking] reach the daemon's settings; run_dir is resolved
    against the config's directory."""
    text = (
        GOOD
        + ANTENNA
        + """
[tracking.pointing]
tick_max_s = 0.5
[tracking.antennas.a1]
g_over_t_db_k = -12.0
[daemon]
run_dir = "run"
tle_refresh_s = 600.0
[daemon.clock]
max_offset_s = 0.1
"""
    )
    settings = daemon_config_of(load_config(_write(tmp_path, text), env={}))
    assert settings.run_dir == tmp_path / "run"
    assert settings.tle_refresh_s == 600.0
    assert settings.clock.max_offset_s == 0.1
    assert settings.tracking.pointing.tick_max_s == 0.5
    assert settings.tracking.antenna("a1").g_over_t_db_k == -12.0
    assert daemon_config_of(object()) == DaemonConfig()


def test_tracking_under_daemon_is_refused(tmp_path: Path) -> None:
    """[daemon.tracking] is pointed to the top-level [tracking] table."""
    text = GOOD + "[daemon.tracking.pointing]\ntick_max_s = 0.5\n"
    with pytest.raises(ConfigError, match=r"daemon\.tracking: .*top-level \[tracking\]"):
        load_config(_write(tmp_path, text), env={})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[daemon]\ngrace_period_s = 0\n", "daemon.grace_period_s = 0: Input should be greater"),
        ("[daemon.clock]\nmax_offset_s = 9999\n", "daemon.clock.max_offset_s = 9999"),
        (
            '[daemon.metrics]\nhost = "0.0.0.0"\n',
            "daemon.metrics: host '0.0.0.0' is not a loopback address",
        ),
        ("[daemon]\nstow_timeout_s = 200.0\n", "stow_timeout_s=200.0 must be below"),
        ('[tracking.doppler]\ndial_policy = "obey"\n', "'follow' or 'ignore'"),
        ("[tracking.antennas.zz]\ng_over_t_db_k = 1.0\n", "tracking.antennas: zz not among"),
        (
            "[[tracking.satellites]]\nnorad_id = 5\neirp_dbw = 99.0\n",
            "tracking.satellites.0.eirp_dbw = 99.0: Input should be less than or equal to 80",
        ),
        (
            "[[tracking.satellites]]\nnorad_id = 5\ndownlink_hz = 435.0e6\n"
            '[tracking.satellites.transponder]\nkind = "inverting"\n'
            "uplink_low_hz = 145.9e6\nuplink_high_hz = 146.0e6\n"
            "downlink_low_hz = 435.6e6\ndownlink_high_hz = 435.7e6\n",
            "downlink_hz=435000000.0 is outside the transponder's downlink passband",
        ),
        (
            "[[satellites]]\nnorad_id = 5\ndownlink_hz = 435.0e6\n"
            "[[tracking.satellites]]\nnorad_id = 5\ndownlink_hz = 436.0e6\n",
            "satellites[0].downlink_hz = 435000000.0 differs from tracking.satellites",
        ),
        ('[catalog]\nurls = ["ftp://example.org/x.tle"]\n', "use http://, https://, file://"),
        (
            '[catalog]\nurls = ["http://127.0.0.1:notaport/a.tle"]\n',
            "catalog.urls = ['http://127.0.0.1:notaport/a.tle']: 'http://127.0.0.1:notaport/a.tle'"
            " is not a valid URL: Port could not be cast to integer value as 'notaport'",
        ),
    ],
)
def test_daemon_and_tracking_errors_name_key_value_and_rule(
    tmp_path: Path, extra: str, expected: str
) -> None:
    """Every bad value of the new tables is reported with key, value and what is allowed,
    by load_config and by check-config (exit 78, the file named)."""
    path = _write(tmp_path, GOOD + ANTENNA + extra)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert expected in str(info.value)
    out = io.StringIO()
    assert check_config(path, out=out) == 78
    assert f"{path}: " in out.getvalue()
    assert expected in out.getvalue()


def test_environment_overrides_set_keys_at_any_depth(tmp_path: Path) -> None:
    """GROUNDLINK__ variables set table keys, array-of-table entries and whole arrays."""
    path = _write(tmp_path, GOOD + ANTENNA)
    env = {
        "GROUNDLINK__MQTT__BROKER": "mqtts://broker.example.org:8883",
        "GROUNDLINK__MQTT__USERNAME": "gs1",
        "GROUNDLINK__MQTT__PASSWORD_FILE": "/run/credentials/groundlink.service/pw",
        "GROUNDLINK__DAEMON__METRICS__PORT": "9200",
        "GROUNDLINK__DAEMON__METRICS__ENABLED": "true",
        "GROUNDLINK__ANTENNAS__0__ROTATOR__URL": "serial:///dev/ttyUSB7?baud=4800",
        "GROUNDLINK__CATALOG__URLS": '["tle/local.tle"]',
        "GROUNDLINK_RUN_DIR": "/not/an/override",
        "HOME": "/home/x",
    }
    cfg = load_config(path, env=env)
    assert cfg.mqtt.broker == "mqtts://broker.example.org:8883"
    assert cfg.mqtt.username == "gs1"
    assert cfg.mqtt.password_file == Path("/run/credentials/groundlink.service/pw")
    assert cfg.daemon.metrics.port == 9200
    assert cfg.daemon.metrics.enabled is True
    assert cfg.antennas[0].rotator.url == "serial:///dev/ttyUSB7?baud=4800"
    assert cfg.catalog.urls == [str(tmp_path / "tle" / "local.tle")]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"GROUNDLINK__DAEMON__METRICS__PORT": "http"},
            "daemon.metrics.port = 'http' (set by $GROUNDLINK__DAEMON__METRICS__PORT)",
        ),
        (
            {"GROUNDLINK__ANTENNAS__3__ROTATOR__URL": "x"},
            "$GROUNDLINK__ANTENNAS__3__ROTATOR__URL: antennas has 1 entries",
        ),
        ({"GROUNDLINK__STATION__ID__X": "x"}, "station.id is a value, not a table"),
        ({"GROUNDLINK__MQTT____BROKER": "x"}, "$GROUNDLINK__MQTT____BROKER: empty key level"),
        ({"GROUNDLINK__CATALOG__URLS": "[unclosed"}, "not a TOML array or inline table"),
        ({"GROUNDLINK__MQTT__BROKR": "x"}, "mqtt.brokr = 'x' (set by $GROUNDLINK__MQTT__BROKR)"),
    ],
)
def test_bad_environment_overrides_name_the_variable(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    """A variable that cannot be applied, or sets a bad value, is named in the error."""
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD + ANTENNA), env=env)
    assert expected in str(info.value)


@pytest.mark.parametrize("value", ["{gs1", "[ops]", '["a", "b"]', "{ a = 1 }"])
def test_string_overrides_starting_with_a_bracket_stay_strings(tmp_path: Path, value: str) -> None:
    """A key the schema types as a string takes the value as it is, brackets and all."""
    cfg = load_config(_write(tmp_path, GOOD), env={"GROUNDLINK__MQTT__USERNAME": value})
    assert cfg.mqtt.username == value


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"GROUNDLINK__MQTT__PASSWORD": "{s3cret"},
            "mqtt.password = <redacted> (set by $GROUNDLINK__MQTT__PASSWORD): unknown key",
        ),
        (
            {"GROUNDLINK__MQTT__PASSWORD": "s3cret"},
            "mqtt.password = <redacted> (set by $GROUNDLINK__MQTT__PASSWORD): unknown key",
        ),
        (
            {"GROUNDLINK__DAEMON__METRICS__API_TOKEN": "[s3cret"},
            "daemon.metrics.api_token = <redacted> (set by $GROUNDLINK__DAEMON__METRICS__",
        ),
        (
            {"GROUNDLINK__STATION__SITE__SECRET_KEY": "[[s3cret"},
            "station.site.secret_key = <redacted>",
        ),
    ],
)
def test_override_errors_never_echo_a_secret(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    """A bad override of a password/secret/token/key names the variable, not the value."""
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD), env=env)
    assert expected in str(info.value)
    assert "s3cret" not in str(info.value)


def test_secret_keys_in_the_file_are_redacted_too(tmp_path: Path) -> None:
    """A bad key named like a secret in the file itself: reported without its value."""
    path = _write(tmp_path, GOOD + '[mqtt]\napi_token = "s3cret"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert "mqtt.api_token = <redacted>: unknown key" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_paths_to_secrets_are_shown(tmp_path: Path) -> None:
    """A key naming a path to a secret (``..._key_file``) is not redacted: the path is no secret."""
    path = _write(tmp_path, GOOD + '[mqtt]\nclient_key_file = "/etc/gs1.key"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert "mqtt.client_key_file = '/etc/gs1.key': unknown key" in str(info.value)


def test_tracking_config_does_not_import_the_station_config() -> None:
    """controller.tracking.config raises the shared ConfigError without importing
    controller.config (the import cycle is gone)."""
    code = (
        "import sys, controller.tracking.config as t, controller.errors as e;"
        "assert 'controller.config' not in sys.modules, 'controller.config imported';"
        "assert t.ConfigError is e.ConfigError"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert ConfigError is ErrorsConfigError
    with pytest.raises(ConfigError, match=r"tick_min_s = 99\.0"):
        load_tracking_config({"pointing": {"tick_min_s": 99.0}})


def test_config_error_survives_pickling() -> None:
    """A ConfigError raised in a worker process reaches the parent with its source and problems."""
    import pickle

    from controller.errors import ConfigError

    error = pickle.loads(pickle.dumps(ConfigError("a.toml", ["x: bad", "y: worse"])))
    assert isinstance(error, ConfigError)
    assert error.source == "a.toml"
    assert error.problems == ["x: bad", "y: worse"]
    assert str(error) == "a.toml: x: bad\na.toml: y: worse"


RANGES = """
[[satellites]]
norad_ids = [100, 104]
weight = 2.0
downlink_hz = 437.0e6

[[satellites]]
norad_id = 102
weight = 9.0

[[tracking.satellites]]
norad_ids = [100, 104]
eirp_dbw = 3.0
"""


def test_norad_ranges_expand_and_single_entries_override(tmp_path: Path) -> None:
    """A norad_ids range gives each satellite the entry; a single norad_id entry wins."""
    cfg = load_config(_write(tmp_path, GOOD + RANGES))
    weights = {s.norad_id: s.weight for s in cfg.satellites}
    assert weights == {100: 2.0, 101: 2.0, 102: 9.0, 103: 2.0, 104: 2.0}
    # The link entries of the range get the range's frequencies from [[satellites]]...
    assert cfg.tracking.satellite(103).eirp_dbw == 3.0
    assert cfg.tracking.satellite(103).downlink_hz == 437.0e6
    # ...and the single [[satellites]] entry (no frequency) does not inherit the range's.
    assert next(s for s in cfg.satellites if s.norad_id == 102).downlink_hz is None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("norad_ids = [5, 3]", "satellites[0].norad_ids = [5, 3]: expected [first, last]"),
        ("norad_ids = [1, 400000]", "<= 339999"),
        ("norad_ids = [1, 3]\nnorad_id = 2", "satellites[0]: give norad_id or norad_ids"),
        ("norad_ids = [1, 3]\nweight = -1.0", "satellites[0] (norad_ids 1..3): weight = -1.0"),
        ("norad_ids = [1, 3]\n\n[[satellites]]\nnorad_ids = [3, 4]", "NORAD 3 is also in"),
    ],
)
def test_bad_norad_ranges_are_named_once(tmp_path: Path, entry: str, expected: str) -> None:
    """A bad range, a bad value in a range entry or overlapping ranges: one precise error."""
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD + "[[satellites]]\n" + entry + "\n"))
    message = str(info.value)
    assert expected in message
    assert message.count("weight") <= 1  # reported for the range, not once per satellite


def test_tracking_config_alone_expands_ranges() -> None:
    """load_tracking_config accepts norad_ids ranges too."""
    cfg = load_tracking_config({"satellites": [{"norad_ids": [7, 9], "eirp_dbw": 4.0}]})
    assert [s.norad_id for s in cfg.satellites] == [7, 8, 9]
    assert cfg.satellite(8).eirp_dbw == 4.0
