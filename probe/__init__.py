"""censorwatch probe: measures reachability of services from the network it runs on."""

from __future__ import annotations

__version__ = "0.1.0"
SOFTWARE_NAME = "censorwatch-probe"
