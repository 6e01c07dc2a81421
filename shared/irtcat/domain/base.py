"""The base of every domain message, and how a validation error reads."""

import json

from pydantic import BaseModel, ConfigDict

# the ids of students, tests, sessions and items
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class Message(BaseModel):
    """A pydantic model whose validator is built on first use, not at import.

    A per-answer Lambda imports the whole domain but validates a handful of its models; building
    every schema at import would lengthen each cold start (``./dev bench --only handlers``).
    """

    model_config = ConfigDict(defer_build=True)


def first_error(exc: Exception) -> str:
    """The first problem of a validation error in words, ``field.path: what is wrong`` (not
    pydantic's whole report, whose last line is a documentation URL)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(x) for x in first.get("loc", ()))
            return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
        except (IndexError, TypeError, json.JSONDecodeError):
            pass
    return str(exc).splitlines()[0]
