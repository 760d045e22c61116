"""Measuring: the one network seam, its real sockets, DNS/DoH/DoT/TLS/HTTP steps, the failure table and the engine that orders them (facts only, no verdicts)."""
