"""Keyboards under bot messages: buttons that run a registered command (the press arrives as
ONIMBOTV2COMMANDADD with ``context: keyboard``)."""

from __future__ import annotations

from typing import Any


def command_button(text: str, command: str, params: str = "", *, block: bool = False) -> dict[str, Any]:
    button: dict[str, Any] = {"TEXT": text, "COMMAND": command.lstrip("/"), "DISPLAY": "LINE"}
    if params:
        button["COMMAND_PARAMS"] = params
    if block:
        button["BLOCK"] = "Y"
    return button


NEWLINE: dict[str, Any] = {"TYPE": "NEWLINE"}


def keyboard(*rows: list[dict[str, Any]]) -> dict[str, Any]:
    buttons: list[dict[str, Any]] = []
    for row in rows:
        if buttons and row:
            buttons.append(dict(NEWLINE))
        buttons.extend(row)
    return {"BUTTONS": buttons}


def main_menu() -> dict[str, Any]:
    return keyboard(
        [
            command_button("Статистика за неделю", "stats", "week"),
            command_button("Категории", "categories"),
            command_button("Помощь", "help"),
        ]
    )


def proposal_buttons(proposal_id: int, name: str) -> list[dict[str, Any]]:
    short = name if len(name) <= 30 else name[:29] + "…"
    return [
        command_button(f"✓ Принять «{short}»", "categories", f"accept {proposal_id}", block=True),
        command_button("✗ Отклонить", "categories", f"reject {proposal_id}", block=True),
    ]
