"""Plots reach the Dagster UI as Markdown images with a data URI, the form its renderer shows."""

from __future__ import annotations

import base64
import re

from mlops_assets.core import markdown_images
from mlops_assets.core.markdown_images import image_markdown

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def test_an_embedded_plot_is_a_markdown_image_whose_data_uri_holds_the_file(tmp_path):
    plot = tmp_path / "predicted_vs_actual.png"
    plot.write_bytes(PNG)
    shown = image_markdown(plot, embed=True)
    match = re.fullmatch(
        r"!\[predicted vs actual\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", shown
    )
    assert match is not None, shown[:80]
    assert base64.b64decode(match.group(1)) == PNG
    assert "<img" not in shown  # the UI's sanitiser drops raw HTML images


def test_on_disk_a_plot_is_linked_by_file_name(tmp_path):
    plot = tmp_path / "drift-b1.png"
    plot.write_bytes(PNG)
    assert image_markdown(plot, embed=False) == "![drift-b1](drift-b1.png)"


def test_a_plot_too_large_for_the_event_log_is_named_not_embedded(tmp_path, monkeypatch):
    monkeypatch.setattr(markdown_images, "MAX_EMBEDDED_BYTES", 100)
    plot = tmp_path / "big.png"
    plot.write_bytes(PNG)
    shown = image_markdown(plot, embed=True)
    assert "data:" not in shown and str(plot) in shown and "1,032 bytes" in shown
