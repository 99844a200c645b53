"""RFC 8288 `Link` header values built from the request URL."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from starlette.datastructures import URL

# Characters left alone when re-quoting a URL: reserved delimiters and `%` (already encoded).
# Everything else — `<`, `>`, `"`, spaces, control characters — is percent-encoded, so a request
# path cannot break out of the `<...>` or inject a header line.
_SAFE = "!#$%&'()*+,/:;=?@[]~"


def link_url(url: URL, set_params: Mapping[str, str], drop: tuple[str, ...] = ()) -> str:
    """`url` with `set_params` replaced and `drop` removed, every other parameter kept in order."""
    if drop:
        url = url.remove_query_params(drop)
    if set_params:
        url = url.include_query_params(**set_params)
    return quote(str(url), safe=_SAFE)


def link_value(links: Mapping[str, str]) -> str:
    """`<url>; rel="name"` entries joined with `, ` (relation order as given)."""
    return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items())
