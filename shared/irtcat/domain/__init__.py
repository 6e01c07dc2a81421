"""Pydantic models of every message and record, and the logic of one session step."""
