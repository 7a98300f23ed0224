"""The `custody` command line: settings, rendering, and one module of commands per group.
"""
