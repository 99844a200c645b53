"""MkDocs hook: fill generated sections (the settings reference) at build time."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- settings-reference -->"


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from fastapi_chassis._settings_doc import render_settings_reference

    return markdown.replace(MARKER, render_settings_reference())
