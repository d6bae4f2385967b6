"""The command line: the only layer that prints, colours or configures logging."""
