"""The base of every domain message."""

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    """A pydantic model whose validator is built on first use, not at import.

    A per-answer Lambda imports the whole domain but validates a handful of its models; building
    every schema at import cost ~80 ms of each cold start (README, benchmarks).
    """

    model_config = ConfigDict(defer_build=True)
