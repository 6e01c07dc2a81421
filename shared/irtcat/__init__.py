"""irtcat: an event-driven computerized adaptive testing engine built on item response theory.

Layers (never importing upwards): ``irt`` (pure numpy maths), ``domain`` (pydantic messages and
the session step), ``adapters`` (everything that touches boto3, the CLI and the local runtime).
"""

__version__ = "0.1.0"
