"""The `botkit` command's subcommands, one module per group; each has `add_commands(subparsers)`."""
