"""A batch is its delivery: whether this run's data may become the batch's data.

The manifest of a batch records the content hash of what was delivered. The same content
delivered again is a re-run: it keeps the first ingestion time, so every derived value stays
the same. Different content under the same key is refused unless the run asks to `replace`,
and then the new manifest records the replacement with both deliveries' hashes.

A delivery is counted once: content equal to what another batch already holds (the same
file landed again under a new name) is refused naming that batch, unless the run says
`allow_repeat`, and then the manifest records which batch it repeats.
"""

from __future__ import annotations

from collections.abc import Iterable
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


HOW_TO_REPEAT = (
    "If you truly mean to add the same rows again, run with allow_repeat: "
    "`mlops run --allow-repeat`, `mlops ingest --allow-repeat`, or `allow_repeat: true` in "
    "raw_data's config in the launchpad."
)


class DeliveryRefused(ValueError):
    """A run that would silently replace, or cannot re-read, a batch's delivery."""


@dataclass(frozen=True)
class Delivery:
    """What this run's data is to the batch: its ingestion time and what it replaces."""

    ingested_at: datetime
    replaces: dict[str, Any] | None = None
    repeats: str | None = None  # the batch whose delivery this one repeats (allowed)


def judge_delivery(
    batch: str,
    published: dict[str, Any] | None,
    delivered_hash: str,
    source: str,
    *,
    replace: bool,
    same_elsewhere: dict[str, Any] | None = None,
    allow_repeat: bool = False,
) -> Delivery:
    """Accept a first delivery or the same one again; a different one only with `replace`.

    `same_elsewhere` is the manifest of another batch that holds this very delivery: a new
    delivery equal to it is accepted only with `allow_repeat`.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    if published is not None and published.get("delivered_hash") == delivered_hash:
        return Delivery(datetime.fromisoformat(published["ingested_at"]))
    repeats = _repeat_of(batch, same_elsewhere, delivered_hash, source, allow_repeat)
    if published is None:
        return Delivery(now, repeats=repeats)
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
    return Delivery(now, previous, repeats)


def repeated_delivery(
    manifests: Iterable[dict[str, Any]], batch: str, delivered_hash: str
) -> dict[str, Any] | None:
    """The manifest of another batch whose delivery has this content hash (None: none has)."""
    for manifest in manifests:
        if manifest.get("batch") != batch and manifest.get("delivered_hash") == delivered_hash:
            return manifest
    return None


def _repeat_of(
    batch: str,
    same_elsewhere: dict[str, Any] | None,
    delivered_hash: str,
    source: str,
    allow_repeat: bool,
) -> str | None:
    """The batch this delivery repeats, if allowed; refused naming that batch otherwise."""
    if same_elsewhere is None:
        return None
    earlier = str(same_elsewhere.get("batch"))
    if not allow_repeat:
        raise DeliveryRefused(
            f"batch {batch!r} repeats batch {earlier!r}: this run read {source}, whose content "
            f"(delivered hash {_short(delivered_hash)}) equals what batch {earlier!r} already "
            f"holds (from {same_elsewhere.get('source')}, ingested "
            f"{same_elsewhere.get('ingested_at')}), so its rows would be counted twice. "
            f"Nothing was changed. {HOW_TO_REPEAT}"
        )
    return earlier


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
