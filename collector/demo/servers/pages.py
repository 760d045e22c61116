"""The pages lab servers serve: an ordinary page, and a block page a probe should recognise."""

from __future__ import annotations

import html
from typing import Final, Literal

Page = Literal["normal", "blockpage"]
PAGES: Final[tuple[Page, ...]] = ("normal", "blockpage")

BLOCKPAGE_TITLE: Final = "Access restricted"
BLOCKPAGE_TEXT: Final = "This resource has been blocked by the decision of the authorities"


def render(page: Page, host: str) -> str:
    if page == "blockpage":
        return _document(BLOCKPAGE_TITLE, f"<h1>{BLOCKPAGE_TITLE}</h1><p>{BLOCKPAGE_TEXT}.</p>")
    name = html.escape(host)
    return _document(name, f"<h1>{name}</h1><p>An ordinary page served by the lab.</p>")


def http_response(page: Page, host: str, status: int = 200) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, for servers without aiohttp."""
    body = render(page, host).encode()
    head = (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Status'}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body>{body}</body></html>\n"
    )
