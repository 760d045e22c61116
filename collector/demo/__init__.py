"""censorwatch demo: the whole pipeline on loopback, and the real servers it runs as its small internet."""
