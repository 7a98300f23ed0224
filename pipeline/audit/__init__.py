"""The append-only, hash-chained audit log and its sealing into the WORM store.
"""
