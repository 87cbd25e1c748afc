"""Tests of the byte transports (loop, faults, pty + serial, tcp, URLs)."""
