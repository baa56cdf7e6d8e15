"""A batch is its delivery: whether this run's data may become the batch's data.

The manifest of a batch records the content hash of what was delivered. The same content
delivered again is a re-run: it keeps the first ingestion time, so every derived value stays
the same. Different content under the same key is refused unless the run asks to `replace`,
and then the new manifest records the replacement with both deliveries' hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

HASH_SHOWN = 16
HOW_TO_REPLACE = (
    "To replace the batch's data with this delivery, run again with replace: "
    "`mlops run --replace`, `mlops ingest --replace` (with the file back in the landing "
    "folder), or `replace: true` in raw_data's config in the launchpad. To keep both, "
    "deliver it under a new batch key."
)


class DeliveryRefused(ValueError):
    """A run that would silently replace, or cannot re-read, a batch's delivery."""


@dataclass(frozen=True)
class Delivery:
    """What this run's data is to the batch: its ingestion time and what it replaces."""

    ingested_at: datetime
    replaces: dict[str, Any] | None = None


def judge_delivery(
    batch: str,
    published: dict[str, Any] | None,
    delivered_hash: str,
    source: str,
    *,
    replace: bool,
) -> Delivery:
    """Accept a first delivery or the same one again; a different one only with `replace`."""
    now = datetime.now(UTC).replace(microsecond=0)
    if published is None:
        return Delivery(now)
    if published.get("delivered_hash") == delivered_hash:
        return Delivery(datetime.fromisoformat(published["ingested_at"]))
    if not replace:
        raise DeliveryRefused(
            f"batch {batch!r} already holds a different delivery: its manifest records "
            f"delivered hash {_short(published.get('delivered_hash'))} from "
            f"{published.get('source')}, this run read {_short(delivered_hash)} from {source}. "
            f"Nothing was changed. {HOW_TO_REPLACE}"
        )
    previous = {
        "source": published.get("source"),
        "ingested_at": published.get("ingested_at"),
        "delivered_hash": published.get("delivered_hash"),
        "content_hash": published.get("content_hash"),
    }
    return Delivery(now, previous)


def unreadable_source(batch: str, source: str, reason: str) -> DeliveryRefused:
    """A re-run whose recorded source cannot be read again: refuse, never substitute one."""
    return DeliveryRefused(
        f"batch {batch!r} was delivered by {source}, which cannot be read again ({reason}). "
        "Its published tables are unchanged. To give the batch new data, run with an explicit "
        "source and replace: true (`mlops run --batch ... --source ... --replace`)."
    )


def manifest_history(
    published: dict[str, Any] | None, delivery: Delivery, new: dict[str, Any]
) -> list[dict[str, Any]]:
    """The batch's replacements so far, plus this one if it replaces a delivery."""
    history = list((published or {}).get("replacements", []))
    if delivery.replaces is not None:
        history.append(
            {
                "at": delivery.ingested_at.isoformat(),
                "previous": delivery.replaces,
                "new": {
                    "source": new["source"],
                    "delivered_hash": new["delivered_hash"],
                    "content_hash": new["content_hash"],
                },
            }
        )
    return history


def _short(digest: object) -> str:
    return str(digest)[:HASH_SHOWN] if digest else "(none)"
