"""Alerting in the collector: the detection cycle, incident context (events, history), the durable outbox and webhook delivery."""
