"""CLI subcommands: thin adapters that parse arguments and call the core or the worker."""
