"""Integrity: BLAKE3 hashing (whole file and chunk tables), the one hash chain (`chain`:
audit log, store ledger, later export manifests), fixity of stored objects (`fixity`).
"""
