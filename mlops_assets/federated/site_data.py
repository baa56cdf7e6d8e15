"""One site's rows: read from the site's own location, typed, checked and cleaned by the spec.

The same functions as the central pipeline (`prepare_raw`, `clean`, the blocking checks), run
inside the site's process, so a site's bad data is refused for the same reasons a central batch
would be, and the refusal names the site.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from mlops_assets.core.cleaning import clean
from mlops_assets.core.quality import check_cleaned, check_raw
from mlops_assets.core.raw import prepare_raw
from mlops_assets.sources.files import FileSource
from mlops_assets.spec import DatasetSpec

DATA_SUFFIXES = (".csv", ".parquet")


class SiteDataError(RuntimeError):
    """A site's rows cannot be used; the message names the site and the reason."""


def site_files(location: str) -> list[Path]:
    """The files a site's location names: a file, a glob, or every CSV/Parquet file of a folder."""
    folder = Path(location)
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in DATA_SUFFIXES)
    return [Path(location)]


def load_site_rows(spec: DatasetSpec, site: str, location: str) -> pd.DataFrame:
    """The site's cleaned rows; refuses with the site and the failed check named."""
    frames = []
    text_key = (spec.entity_key,) if spec.text_entity_key else ()
    for path in site_files(location):
        try:
            frames.append(FileSource(str(path), text_columns=text_key).load())
        except Exception as exc:  # a missing or unreadable file: say which site it belongs to
            raise SiteDataError(f"site '{site}': {exc}") from exc
    if not frames:
        raise SiteDataError(f"site '{site}': no .csv or .parquet file in {location}")
    try:
        raw = prepare_raw(pd.concat(frames, ignore_index=True), spec, location, datetime.now(UTC))
    except Exception as exc:
        raise SiteDataError(f"site '{site}': {exc}") from exc
    _refuse_blocking(site, "raw", check_raw(raw.frame, spec))
    result = clean(raw.frame, spec)
    _refuse_blocking(site, "cleaned", check_cleaned(result, spec))
    return result.cleaned


def _refuse_blocking(site: str, stage: str, outcomes: list) -> None:
    failed = [o for o in outcomes if o.blocks]
    if failed:
        named = "; ".join(f"check '{o.name}' failed: {o.description}" for o in failed)
        raise SiteDataError(f"site '{site}' ({stage} data): {named}")
