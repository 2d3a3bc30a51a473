from __future__ import annotations

import polars as pl

from inboxgraph.quality.drift import assess_fields, assess_volume, zscore


def _partitions(rows: list[int], quarantined: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "partition": [f"2026-11-{d:02d}" for d in range(1, len(rows) + 1)],
            "landed": [r - q for r, q in zip(rows, quarantined, strict=True)],
            "quarantined": quarantined,
        }
    )


def test_zscore_needs_history() -> None:
    assert zscore([10, 11], 50) is None
    assert zscore([10, 10, 10, 10, 10], 10) == 0.0
    assert abs(zscore([9, 10, 11, 10, 9, 11], 10)) < 0.01


def test_a_normal_day_passes() -> None:
    result = assess_volume(
        _partitions([1000, 1020, 990, 1010, 1005, 995, 1012], [5, 4, 6, 5, 5, 4, 5])
    )
    assert result.passed, result.reasons
    assert result.metadata["partition"] == "2026-11-07"


def test_a_volume_collapse_is_reported() -> None:
    result = assess_volume(
        _partitions([1000, 1020, 990, 1010, 1005, 995, 40], [5, 4, 6, 5, 5, 4, 0])
    )
    assert not result.passed
    assert "volume z-score" in result.reasons[0]


def test_a_quarantine_spike_is_reported() -> None:
    result = assess_volume(
        _partitions([1000, 1020, 990, 1010, 1005, 995, 1000], [5, 4, 6, 5, 5, 4, 120])
    )
    assert not result.passed
    assert any("quarantine rate" in r for r in result.reasons)


def test_new_and_missing_fields_are_reported() -> None:
    result = assess_fields(
        {"type": 10, "messageId": 10, "loyaltyTier": 3},
        10,
        known={"type", "messageId", "timestamp"},
        required={"type", "messageId", "timestamp"},
    )
    assert not result.passed
    assert result.metadata["new_fields"] == ["loyaltyTier"]
    assert result.metadata["missing_fields"] == ["timestamp"]
