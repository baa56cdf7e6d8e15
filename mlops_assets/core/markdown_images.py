"""PNG plots inside Markdown: inline for the Dagster UI, by file name for files on disk.

The Dagster UI renders Markdown metadata (the asset page's metadata, "Show Markdown") with
images whose source is `http(s):` or a `data:` URI; it has no route to files on the machine
and drops raw HTML `<img>` tags. So the report and drift plots reach the UI as Markdown images
with a base64 `data:image/png` URI (checked in headless Chromium by
`tests/integration/test_ui_pictures.py`). The Markdown written beside the plots names them by
file, so it reads in any viewer that opens the folder.
"""

from __future__ import annotations

import base64
from pathlib import Path

# Above this a plot is linked by path instead: the event log keeps every materialization's
# metadata, and a few plots of ~100 KB each is what a report should cost there.
MAX_EMBEDDED_BYTES = 1_000_000


def image_markdown(path: Path, *, embed: bool) -> str:
    """`![name](data:image/png;base64,...)` when `embed`, else `![name](file name)`."""
    name = path.stem.replace("_", " ")
    if not embed:
        return f"![{name}]({path.name})"
    data = path.read_bytes()
    if len(data) > MAX_EMBEDDED_BYTES:
        return f"`{path}` ({len(data):,} bytes: too large to show inline)"
    return f"![{name}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"
