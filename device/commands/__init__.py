"""Device-side subcommands (gate, install-service). Never import torch."""
