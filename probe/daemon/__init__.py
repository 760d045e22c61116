"""The volunteer's daemon: consent, state, schedule, spool, upload, the collector client and the run/status commands."""
