"""censorwatch alerts: incident detection, correlation, delivery."""
