"""Markdown → BB-code and message splitting (pure functions)."""

from __future__ import annotations

from callcoach.bot.events import parse_bot_event
from callcoach.bot.formatting import CUT_NOTE, split_message
from callcoach.bot.stats import parse_stats_args
from callcoach.rights import OrgChart, access_for
from callcoach.texts import markdown_to_bbcode


def test_markdown_to_bbcode() -> None:
    md = "# Заголовок\n**жирный** и __тоже__, *курсив*, ~~зачёркнуто~~\n1. раз\n* два\n> цитата\n---\n[a](http://x.y/z)"
    bb = markdown_to_bbcode(md)
    assert bb.splitlines() == [
        "[b]Заголовок[/b]",
        "[b]жирный[/b] и [b]тоже[/b], [i]курсив[/i], [s]зачёркнуто[/s]",
        "1. раз",
        "• два",
        ">>цитата",
        "------",
        "[url=http://x.y/z]a[/url]",
    ]


def test_code_is_kept_verbatim() -> None:
    bb = markdown_to_bbcode("```python\nx = a**b**c\n```\nи `snake_case_name`")
    assert "[code]x = a**b**c[/code]" in bb and "[code]snake_case_name[/code]" in bb


def test_words_with_underscores_and_stars_stay() -> None:
    assert markdown_to_bbcode("file_name_here and 2*3*4") == "file_name_here and 2*3*4"


def test_split_at_paragraphs() -> None:
    text = "\n\n".join("абзац " * 300 for _ in range(10))
    parts = split_message(text, 5000)
    assert all(len(p) <= 5000 for p in parts)
    assert all(p.endswith("абзац") for p in parts)
    assert "".join(parts).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_cut_cleanly_with_a_note() -> None:
    parts = split_message("слово " * 100_000, 20_000, max_parts=3)
    assert len(parts) == 3 and parts[-1].endswith(CUT_NOTE) and all(len(p) <= 20_000 for p in parts)


def test_unbroken_text_is_hard_split() -> None:
    parts = split_message("x" * 45_000)
    assert [len(p) for p in parts] == [20_000, 20_000, 5_000]


def test_typed_command_is_a_command() -> None:
    event = parse_bot_event(
        "ONIMBOTV2MESSAGEADD",
        {
            "bot": {"id": 3},
            "message": {"id": 9, "authorId": 7, "text": "/Stats неделя @Пётр"},
            "chat": {"dialogId": "7"},
        },
    )
    assert (event.command, event.params, event.user_id, event.dialog_id) == ("stats", "неделя @Пётр", 7, "7")


def test_stats_args() -> None:
    assert parse_stats_args("").period == "week"
    q = parse_stats_args("месяц @Иван Петров")
    assert (q.period, q.manager) == ("month", "Иван Петров")
    q = parse_stats_args("[USER=12]Иван Петров[/USER] today")
    assert (q.period, q.manager) == ("today", "12")


def test_head_sees_sub_departments() -> None:
    chart = OrgChart(
        admins=frozenset({1}),
        names={1: "A", 5: "Head", 7: "M", 9: "S"},
        departments_of={5: (10,), 7: (11,), 9: (20,)},
        heads={10: 5},
        parents={11: 10, 10: 1, 20: 1},
    )
    head = access_for(chart, 5)
    assert head.can_see(7) and head.can_see(5) and not head.can_see(9)
    assert access_for(chart, 1).can_see(9)
    manager = access_for(chart, 7)
    assert manager.can_see(7) and not manager.can_see(5) and not manager.sees_others
