"""groundlink controller: orbit, scheduler, tracker, telemetry, commands, daemon and CLI."""

__version__ = "0.1.0"
