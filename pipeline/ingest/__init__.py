"""Ingest: labels files, one file -> records, a batch of files -> one atomic catalog commit.
"""
