"""The named questions on the exported history, with DuckDB (same layout as S3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from .queries import NAMES, history_columns, query


def connect(history_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a ``history`` table loaded from ``DIR/history/dt=*/*`` (JSON
    lines, gzip or plain), ``dt`` taken from the partition path as Athena's projection does.
    The files are parsed once; every question then runs on the columnar table."""
    root = Path(history_dir)
    base = root / "history" if (root / "history").is_dir() else root
    files = sorted(str(p) for p in base.glob("dt=*/*") if p.is_file())
    if not files:
        raise ValueError(f"no history files under {base} (expected dt=YYYY-MM-DD/ folders)")
    con = duckdb.connect()
    cols = ", ".join(f"'{k}': '{v}'" for k, v in history_columns().items())
    file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"""
        CREATE TABLE history AS
        SELECT * FROM read_json([{file_list}], format='newline_delimited', columns={{{cols}}},
                                hive_partitioning=true, compression='auto')
    """)
    return con


def run(con: duckdb.DuckDBPyConnection, name: str, session_id: str | None = None) -> list[dict[str, Any]]:
    """Rows of a named question as dicts."""
    sql = query(name)
    if name == "session_trajectory":
        if session_id is None:
            raise ValueError("session_trajectory needs a session id")
        sql = sql.replace("'SESSION_ID'", "$session_id")
        cur = con.execute(sql, {"session_id": session_id})
    else:
        cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def run_all(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """Every named question but the per-session one."""
    return {name: run(con, name) for name in NAMES if name != "session_trajectory"}
