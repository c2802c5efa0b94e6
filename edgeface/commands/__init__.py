"""Core subcommands of the ``edgeface`` CLI, one module each (see :mod:`edgeface.cli`)."""
