"""Pure analysis of probe results: timestamp timing, container evidence, sessions across files.
No I/O.
"""
