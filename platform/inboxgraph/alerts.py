"""Alerts: freshness changes, failed checks and failed runs, to a webhook and to the log."""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass

import dagster as dg

logger = logging.getLogger("inboxgraph.alerts")

ALERTING_FRESHNESS_STATES = {"WARN", "FAIL"}


@dataclass(frozen=True)
class Alert:
    """One thing a data engineer must hear about once."""

    kind: str  # freshness, check, run
    subject: str  # asset key, asset key:check, or job name
    state: str  # WARN, FAIL, ...
    detail: str
    run_id: str | None = None

    @property
    def text(self) -> str:
        icon = ":warning:" if self.state == "WARN" else ":rotating_light:"
        return f"{icon} Inboxgraph {self.kind} {self.state}: {self.subject}. {self.detail}"

    def payload(self) -> dict:
        """Slack-compatible (incoming webhook) JSON, with the fields in a machine-readable block."""
        fields = [
            {"type": "mrkdwn", "text": f"*{name}*\n{value}"}
            for name, value in (
                ("kind", self.kind),
                ("subject", self.subject),
                ("state", self.state),
                ("run", self.run_id or "-"),
            )
        ]
        return {
            "text": self.text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": self.text}},
                {"type": "section", "fields": fields},
            ],
            "inboxgraph": {
                "kind": self.kind,
                "subject": self.subject,
                "state": self.state,
                "detail": self.detail,
                "run_id": self.run_id,
            },
        }


def alert_from_entry(entry: dg.EventLogEntry) -> Alert | None:
    """The alert an event log entry calls for, or None."""
    event = entry.dagster_event
    if event is None:
        return None
    if event.event_type == dg.DagsterEventType.FRESHNESS_STATE_CHANGE:
        change = event.event_specific_data
        state = change.new_state.value
        if state not in ALERTING_FRESHNESS_STATES:
            return None
        return Alert(
            "freshness", change.key.to_user_string(), state, f"was {change.previous_state.value}"
        )
    if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation = event.event_specific_data
        if evaluation.passed:
            return None
        state = "WARN" if evaluation.severity == dg.AssetCheckSeverity.WARN else "FAIL"
        failed = evaluation.metadata.get("failed_checks")
        detail = f"failed checks: {failed.value}" if failed is not None else "check failed"
        return Alert(
            "check",
            f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}",
            state,
            detail,
            entry.run_id,
        )
    if event.event_type == dg.DagsterEventType.RUN_FAILURE:
        return Alert(
            "run", event.job_name or "run", "FAIL", entry.message or "the run failed", entry.run_id
        )
    return None


class AlertWebhook(dg.ConfigurableResource):
    """POSTs each alert as JSON to ``url`` (Slack-compatible); every alert is also logged."""

    url: str = ""
    timeout_seconds: float = 10.0

    def send(self, alert: Alert) -> bool:
        logger.warning(alert.text)
        if not self.url:
            return False
        request = urllib.request.Request(
            self.url,
            data=json.dumps(alert.payload()).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            return 200 <= response.status < 300
