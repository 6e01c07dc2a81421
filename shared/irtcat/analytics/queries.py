"""The named questions, as SQL over a table named ``history`` (the Glue table on AWS, a DuckDB
view over the exported files locally). One file per question in ``queries/``; the template's
``AWS::Athena::NamedQuery`` resources carry the same text (a test keeps them equal)."""

from __future__ import annotations

from pathlib import Path

from ..domain.history import HistoryRecord

QUERY_DIR = Path(__file__).with_name("queries")
NAMES = ("latest_ability", "session_trajectory", "ability_by_test_day", "length_and_stop_reasons",
         "item_exposure", "pretest_responses", "distractor_analysis", "category_frequencies",
         "blueprint_conformance")


def query(name: str) -> str:
    """The SQL text of a named question."""
    if name not in NAMES:
        raise KeyError(f"unknown query {name!r}; known: {', '.join(NAMES)}")
    return (QUERY_DIR / f"{name}.sql").read_text(encoding="utf-8")


def description(name: str) -> str:
    """The first comment line of the query."""
    first = query(name).splitlines()[0]
    return first.removeprefix("--").strip()


_DUCK_TYPES = {"int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "str": "VARCHAR"}


def history_columns() -> dict[str, str]:
    """Column name -> DuckDB type, from the history record model (timestamps as ISO text, as in
    the Glue table: lexical order is time order for these UTC strings)."""
    out = {}
    for name, field in HistoryRecord.model_fields.items():
        if name == "groups":  # a groups record's only field, kept out of the history table (its own prefix)
            continue
        ann = str(field.annotation)
        kind = next((k for k in ("bool", "int", "float") if k in ann and "datetime" not in ann), "str")
        out[name] = _DUCK_TYPES[kind]
    return out


def glue_columns() -> list[dict[str, str]]:
    """The Glue table's columns (Athena types)."""
    athena = {"BIGINT": "bigint", "DOUBLE": "double", "BOOLEAN": "boolean", "VARCHAR": "string"}
    return [{"Name": k, "Type": athena[v]} for k, v in history_columns().items()]
