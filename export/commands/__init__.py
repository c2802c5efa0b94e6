"""Desktop-side subcommands (train, prepare, export, ...). Heavy imports stay inside ``run``."""
