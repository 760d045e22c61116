"""Judging: pure rules from a measurement's facts to verdicts, and the fingerprints they use."""
