"""Where deploy/ keeps what the tests check."""

from __future__ import annotations

from typing import Final

from lab.paths import REPO_ROOT

ROOT: Final = REPO_ROOT
DEPLOY: Final = ROOT / "deploy"
PROMETHEUS: Final = DEPLOY / "prometheus"
DASHBOARDS: Final = DEPLOY / "grafana" / "dashboards"
GRAFANA_PROVISIONING: Final = DEPLOY / "grafana" / "provisioning"
K8S: Final = DEPLOY / "k8s"

# Exported by the alerting work (issue on alerts); until the collector exports them, panels on
# them return no series and the PromQL check accepts that — and only that.
ALERTING_METRICS: Final = frozenset(
    {
        "censorwatch_incidents_open",
        "censorwatch_webhook_deliveries_total",
        "censorwatch_webhook_dead_letters",
        "censorwatch_outbox_pending",
    }
)
