"""Subcommands of the `gmvit` command line, one module each."""
