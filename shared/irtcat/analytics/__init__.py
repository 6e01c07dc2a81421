"""The history, queryable: the named questions (one SQL file each, run by Athena on AWS and by
DuckDB locally) and the local dashboard."""
