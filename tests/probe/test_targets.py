from __future__ import annotations

from pathlib import Path

import pytest

from probe.targets import TargetListError, load, load_default, parse

GOOD = """
[[services]]
name = "telegram"
title = "Telegram"
category = "messenger"
[[services.endpoints]]
host = "web.telegram.org"
port = 443
[[services.endpoints]]
ip = "149.154.167.51"
port = 443
tls = true
sni = "web.telegram.org"
"""


def test_default_list_has_the_required_services_and_controls() -> None:
    targets = load_default()
    names = {s.name for s in targets.services}
    assert {
        "whatsapp",
        "telegram",
        "signal",
        "facebook_messenger",
        "facebook",
        "instagram",
        "youtube",
        "x",
        "tiktok",
        "vk",
    } <= names
    assert len(targets.controls) >= 2
    telegram = next(s for s in targets.services if s.name == "telegram")
    assert any(e.ip for e in telegram.endpoints), "telegram's data-centre addresses"


def test_parse_contract_example() -> None:
    targets = parse(GOOD, "t.toml")
    (service,) = targets.services
    assert service.endpoints[0].server_name == "web.telegram.org"
    assert service.endpoints[1].ip == "149.154.167.51"
    assert service.endpoints[1].server_name == "web.telegram.org"


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        (
            GOOD.replace(
                "port = 443\n[[services.endpoints]]",
                'port = 443\ncolour = "red"\n[[services.endpoints]]',
            ),
            9,
            "colour",
        ),
        (GOOD.replace('title = "Telegram"', 'title = "Telegram"\nflavour = 1'), 5, "flavour"),
        (GOOD.replace('name = "telegram"', 'name = "Tele gram"'), 3, "name"),
        (
            GOOD.replace(
                "port = 443\n[[services.endpoints]]", "port = 70000\n[[services.endpoints]]"
            ),
            8,
            "port",
        ),
        (GOOD.replace('ip = "149.154.167.51"', 'ip = "149.154.167"'), 10, "ip"),
        (GOOD.replace('ip = "149.154.167.51"', 'host = "a.b"\nip = "1.2.3.4"'), 10, "host"),
        (GOOD.replace("tls = true", 'tls = "yes"'), 12, "tls"),
        (GOOD + GOOD, 16, "name"),
    ],
)
def test_errors_name_file_line_and_key(text: str, line: int, key: str) -> None:
    with pytest.raises(TargetListError) as caught:
        parse(text, "lists/bad.toml")
    error = caught.value
    assert (error.path, error.line, error.key) == ("lists/bad.toml", line, key)
    assert str(error).startswith(f"lists/bad.toml:{line}: {key}: ")


def test_invalid_toml_names_the_line() -> None:
    with pytest.raises(TargetListError, match=r"bad.toml:3: invalid TOML"):
        parse('[[services]]\nname = "a"\nport = = 4\n', "bad.toml")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TargetListError, match="cannot read"):
        load(tmp_path / "nope.toml")


def test_select_keeps_controls_and_rejects_unknown() -> None:
    targets = load_default()
    chosen = targets.select(["telegram"])
    assert {s.name for s in chosen.services} == {"telegram"} | {s.name for s in targets.controls}
    with pytest.raises(TargetListError, match="no such service: telegramm"):
        targets.select(["telegramm"])
