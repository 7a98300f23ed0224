"""The audit log: `log` (append, group commit, fsync), `seal` (segments into the WORM
store), `verify` (pure chain verification over the records' bytes).
"""
