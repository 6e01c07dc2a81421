"""What an import collects before it builds the bank: item drafts with their media, shared
stimuli, and the report of what came in and what was refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .safety import Package


@dataclass
class ImportReport:
    """What came in and what was refused, as ``--json`` prints it."""

    imported: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, item_id: str | None, source: str, reason: str) -> None:
        self.refused.append({"item_id": item_id, "source": source, "reason": reason})


@dataclass
class Draft:
    """An item read from an input, before its parameters: its fields and its media."""

    fields: dict[str, Any]
    source: str
    media: dict[str, tuple[Package, str]]  # bank media path -> (package, member)


@dataclass
class Collected:
    """Every input's drafts, and the stimuli they refer to (id -> HTML, and their media)."""

    drafts: list[Draft] = field(default_factory=list)
    stimuli: dict[str, str] = field(default_factory=dict)
    stimulus_media: dict[str, dict[str, tuple[Package, str]]] = field(default_factory=dict)
    # what a package exported by irtcat carries beside its QTI (importer/export.py)
    extension_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    extension_bank: dict[str, Any] = field(default_factory=dict)
