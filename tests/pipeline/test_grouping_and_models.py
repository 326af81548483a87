from __future__ import annotations

import re

from callcoach.pipeline.asr import prepare_bundled_model
from callcoach.pipeline.grouping import group_candidates, transliterate_code

CODE = re.compile(r"^[a-z][a-z0-9_]{1,48}$")


def test_similar_quotes_from_different_calls_form_one_group(text_analyzer) -> None:
    quotes = [
        "Сначала служба безопасности должна проверить ваше решение.",
        "Без заключения нашей службы безопасности ничего не подпишем.",
        "Наши безопасники должны провести проверку, потом поговорим.",
        "Мы можем покупать только софт из реестра отечественного ПО.",
        "Пока вас нет в реестре российского программного обеспечения, купить не сможем.",
    ]
    groups = group_candidates(quotes, text_analyzer.embedders[0])
    assert [g.size for g in groups][:2] == [3, 2]
    assert sum(g.size for g in groups) == 5
    for g in groups:
        assert CODE.match(g.code) and g.name and g.examples
    assert len({g.code for g in groups}) == len(groups)
    assert "безопасн" in groups[0].name.lower()


def test_transliterated_codes_are_valid_and_unique() -> None:
    assert transliterate_code("Проверка службы безопасности") == "proverka_sluzhby_bezopasnosti"
    assert transliterate_code("Проверка", taken=["proverka"]) == "proverka_2"
    assert CODE.match(transliterate_code("123 ёж"))
    assert CODE.match(transliterate_code("!!!"))


def test_bundled_model_is_joined_once_with_tokenizer(tmp_path) -> None:
    folder = prepare_bundled_model(tmp_path)
    assert {p.name for p in folder.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert prepare_bundled_model(tmp_path) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # not rewritten
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".whisper")]  # no temp leftovers
