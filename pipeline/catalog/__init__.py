"""The Parquet catalog: atomic batch commits of record parts (local or S3) and the DuckDB views
over them.
"""
