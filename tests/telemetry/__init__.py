"""Tests of the MQTT telemetry and command side (controller/telemetry)."""
