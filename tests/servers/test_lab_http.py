from __future__ import annotations

import aiohttp
import pytest

from collector.demo.servers import BLOCKPAGE_TEXT, BLOCKPAGE_TITLE, HTTPServer

HOST = "127.0.9.9"


async def fetch(server: HTTPServer, host: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + "some/path", headers={"Host": host}) as response,
    ):
        return response.status, await response.text()


async def test_serves_an_ordinary_page_for_any_host() -> None:
    async with HTTPServer(HOST) as server:
        status, text = await fetch(server, "vk.com")

    assert status == 200
    assert "<title>vk.com</title>" in text
    assert BLOCKPAGE_TEXT not in text


@pytest.mark.parametrize("status", [200, 403])
async def test_blockpage_mode_answers_any_host_with_the_block_page(status: int) -> None:
    async with HTTPServer(HOST, mode="blockpage", status=status) as server:
        got, text = await fetch(server, "web.telegram.org")

    assert got == status
    assert f"<title>{BLOCKPAGE_TITLE}</title>" in text
    assert BLOCKPAGE_TEXT in text


async def test_mode_changes_while_running() -> None:
    async with HTTPServer(HOST) as server:
        server.mode = "blockpage"
        _, text = await fetch(server, "vk.com")

    assert BLOCKPAGE_TITLE in text


def test_an_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="blokpage"):
        HTTPServer(HOST, mode="blokpage")  # type: ignore[arg-type]
