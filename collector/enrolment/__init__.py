"""Probes joining: enrolment, registration, check-in and the address-to-network lookup (addresses are forgotten)."""
