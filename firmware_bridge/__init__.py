"""firmware_bridge: the hardware-abstraction layer.

Clock, transports, sans-I/O codecs, command links, drivers and simulators.

This package never imports ``controller``.
"""
