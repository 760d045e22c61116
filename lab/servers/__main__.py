"""``python -m lab.servers CONFIG``: see ``lab.servers.config`` and ``lab.servers.standalone``."""

from __future__ import annotations

import sys

from lab.servers.standalone import main

sys.exit(main())
