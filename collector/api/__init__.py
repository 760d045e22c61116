"""The read and admin API: JSON errors and bodies, filters, measurements, aggregation, incidents, events, subscribers, metrics and the OpenAPI document."""
