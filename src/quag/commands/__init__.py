"""One module per ``quag`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int`` (see ``quag.cli``)."""
