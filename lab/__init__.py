"""The censorship lab: a simulated internet and a censoring network to test the probe against."""
