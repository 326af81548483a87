from __future__ import annotations

import json
import re

import pytest

from callcoach.pipeline.categories import (
    CategoryFormatError,
    categories_from_json,
    categories_to_json,
    standard_categories,
)

NAMES = {
    "price": "Высокая цена",
    "no_time": "Нет сейчас времени",
    "has_alternative": "Уже есть другой вариант",
    "unclear_need": "Непонятна потребность",
    "cannot_decide": "Не может принять решение",
    "terms_mismatch": "Не подходят условия",
    "lack_of_trust": "Не хватает доверия и репутации",
    "competitors": "Сравнивает с конкурентами",
    "quality": "Недостаточное качество или функциональность",
    "expertise_doubt": "Не уверен в опыте и компетенциях",
}


def test_ten_standard_categories_with_examples_and_advice() -> None:
    cats = standard_categories()
    assert {c.code: c.name for c in cats} == NAMES
    for c in cats:
        assert c.standard and c.description
        assert 8 <= len(c.examples) <= 15 and len(set(c.examples)) == len(c.examples)
        sentences = [s for s in re.split(r"[.!?]\s", c.recommendation.strip()) if s]
        assert 3 <= len(sentences) <= 5, c.code


def test_json_round_trip() -> None:
    cats = standard_categories()
    assert categories_from_json(categories_to_json(cats)) == cats


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"code": "x"}', "expected a JSON list"),
        ('[{"code": "Цена", "name": "Цена"}]', "code: must be lowercase Latin"),
        ('[{"code": "price_x"}]', "name"),
        ('[{"code": "aa", "name": "A"}, {"code": "aa", "name": "B"}]', "more than once"),
        ('[{"code": "aa", "name": "A", "examples": "one"}]', "examples"),
        ("[5]", "expected an object"),
    ],
)
def test_bad_json_says_what_is_wrong(payload: str, message: str) -> None:
    with pytest.raises(CategoryFormatError, match=re.escape(message)):
        categories_from_json(payload)


def test_entry_is_named_in_error() -> None:
    data = json.loads(categories_to_json(standard_categories()))
    data[3]["code"] = "Bad Code"
    with pytest.raises(CategoryFormatError, match=r"category #4"):
        categories_from_json(json.dumps(data))
