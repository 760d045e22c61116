from __future__ import annotations

import pytest

from probe.measure import http
from probe.verdicts import blockpages


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<title>Access restricted</title><p>Sorry.</p>", "generic.access_restricted"),
        (
            "This resource has been blocked by the decision of the authorities.",
            "generic.authorities",
        ),
        ("Доступ к ресурсу ограничен на основании решения Роскомнадзора", "ru.restricted"),
        ("<p>has been blocked by the decision of the authorities</p>" + "news " * 5000, None),
        ("<html><title>Site blocked</title><body>Sorry.</body></html>", "generic.headline"),
        (
            "<h1>Access to this website is restricted</h1>" + "<p>filler</p>" * 400,
            "generic.headline",
        ),
        ("<p>This page has been blocked.</p>", "generic.headline"),
        ("<title>News</title><p>The site was blocked in May, a court said.</p>" + "x" * 3000, None),
        ('<iframe src="http://10.10.34.34/?type=Invalid"></iframe>', "ir.peyvandha"),
        ("<title>Welcome</title><p>An ordinary page that mentions blocking in general.</p>", None),
    ],
)
def test_fingerprints(body: str, expected: str | None) -> None:
    assert blockpages.match(body) == expected


def test_hints_from_the_target_list() -> None:
    assert blockpages.match("Sayfa erişime kapatılmıştır", ("erişime kapatılmıştır",)) == "hint.0"


def test_redirect_to_a_block_page_is_recognised_by_its_header() -> None:
    raw = (
        b"HTTP/1.1 302 Found\r\nLocation: http://warning.rt.ru/?id=17\r\nContent-Length: 0\r\n\r\n"
    )
    response = http.parse(raw)
    assert response.status == 302
    assert response.blockpage == "ru.warning_redirect"


def test_status_451_is_a_block_page() -> None:
    raw = b"HTTP/1.1 451 Unavailable For Legal Reasons\r\nContent-Length: 2\r\n\r\nno"
    assert http.parse(raw).blockpage == "http.status_451"


def test_not_http_is_an_error() -> None:
    with pytest.raises(http.BadResponse):
        http.parse(b"\x16\x03\x01 garbage")
