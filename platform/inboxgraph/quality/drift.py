"""Volume and schema drift: is today's landing like the recent ones?"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

Z_LIMIT = 3.0
QUARANTINE_RATE_LIMIT = 0.05
HISTORY = 28
MIN_HISTORY = 5


def zscore(history: Sequence[float], current: float) -> float | None:
    """How many standard deviations ``current`` lies from the history; None without history."""
    if len(history) < MIN_HISTORY:
        return None
    mean = statistics.fmean(history)
    spread = statistics.pstdev(history)
    if spread == 0:
        return 0.0 if current == mean else float("inf")
    return (current - mean) / spread


@dataclass
class DriftAssessment:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    metadata: dict[str, object] = field(default_factory=dict)


def assess_volume(partitions: pl.DataFrame) -> DriftAssessment:
    """Judge the newest partition's volume and quarantine rate against the ones before it.

    ``partitions`` has ``partition``, ``landed`` and ``quarantined``, one row per partition.
    """
    if partitions.is_empty():
        return DriftAssessment(True, metadata={"partitions": 0})
    ordered = (
        partitions.sort("partition")
        .with_columns(rows=pl.col("landed") + pl.col("quarantined"))
        .with_columns(rate=pl.col("quarantined") / pl.max_horizontal(pl.col("rows"), pl.lit(1)))
    )
    latest = ordered.row(-1, named=True)
    history = ordered.slice(max(0, ordered.height - 1 - HISTORY), min(HISTORY, ordered.height - 1))
    rows_z = zscore(history["rows"].to_list(), latest["rows"])
    rate_z = zscore(history["rate"].to_list(), latest["rate"])
    reasons = []
    if rows_z is not None and abs(rows_z) > Z_LIMIT:
        reasons.append(f"volume z-score {rows_z:.1f} beyond ±{Z_LIMIT}")
    rate_limit = QUARANTINE_RATE_LIMIT
    if rate_z is not None and rate_z > Z_LIMIT and latest["rate"] > rate_limit / 5:
        reasons.append(f"quarantine rate z-score {rate_z:.1f} above {Z_LIMIT}")
    if latest["rate"] > rate_limit:
        reasons.append(f"quarantine rate {latest['rate']:.1%} above {rate_limit:.0%}")
    metadata = {
        "partition": str(latest["partition"]),
        "rows": int(latest["rows"]),
        "quarantine_rate": round(float(latest["rate"]), 5),
        "volume_zscore": None if rows_z is None else round(rows_z, 2),
        "quarantine_rate_zscore": None if rate_z is None else round(rate_z, 2),
        "history_partitions": history.height,
    }
    return DriftAssessment(not reasons, reasons, metadata)


def assess_fields(
    observed: dict[str, int], total: int, known: set[str], required: set[str]
) -> DriftAssessment:
    """New fields (outside ``known``) and required fields absent from every record."""
    new = sorted(k for k in observed if k not in known)
    missing = sorted(k for k in required if observed.get(k, 0) == 0) if total else []
    reasons = [f"new field {k!r} in {observed[k]} records (kept in `extra`)" for k in new]
    reasons += [f"required field {k!r} missing from every record" for k in missing]
    return DriftAssessment(
        not reasons,
        reasons,
        {
            "new_fields": new,
            "missing_fields": missing,
            "records": total,
            "fields_seen": dict(sorted(observed.items())),
        },
    )
