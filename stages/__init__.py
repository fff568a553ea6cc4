"""One module per command. Stages import from `pipeline`, never from each other."""
