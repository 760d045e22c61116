"""Fixtures for deploy/: paths, and a real collector scraped by a real Prometheus."""

from __future__ import annotations

import sys
from pathlib import Path

# The collector harness lives beside the collector tests; reuse it rather than copy it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
