"""The embedded local runtime: the real template, state machine and handlers on moto, no Docker."""
