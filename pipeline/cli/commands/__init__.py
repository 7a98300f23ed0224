"""One module per command group, each with `register(subparsers, shared)`.

`shared` is the parent parser of the options every command takes (`--as`, `--store`,
`--catalog`, `--config`, `--json`, `--quiet`, `--debug`); `pipeline.cli.main` adds it to
every subcommand and to the top level, so they work before or after the subcommand.
"""
