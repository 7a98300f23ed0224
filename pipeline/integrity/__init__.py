"""Hashing (BLAKE3 whole-file and chunk tables), the hash-chain helper, fixity verification of
stored objects.
"""
