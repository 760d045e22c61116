"""``python -m collector.demo.servers CONFIG``: see ``collector.demo.servers.config`` and ``collector.demo.servers.standalone``."""

from __future__ import annotations

import sys

from collector.demo.servers.standalone import main

sys.exit(main())
