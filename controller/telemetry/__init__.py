"""Telemetry and operator commands over MQTT.

* :mod:`.topics`: the topic tree; :mod:`.payloads`: pydantic models of every payload and
  their JSON Schemas; :mod:`.sink`: the :class:`TelemetrySink` producers write to;
* :mod:`.outbox`: the bounded outbox; :mod:`.mqtt`: the aiomqtt publisher and its
  reconnect supervisor; :mod:`.commands`: command validation and dispatch;
* :mod:`.config`: the ``[mqtt]`` table; :mod:`.broker`: the embedded broker
  (:mod:`.mqtt_broker`); :mod:`.monitor`: the ``groundlink monitor`` terminal dashboard.
"""

from controller.telemetry.config import MqttConfig
from controller.telemetry.sink import InMemorySink, TelemetrySink

__all__ = ["InMemorySink", "MqttConfig", "TelemetrySink"]
