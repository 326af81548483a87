"""The text stage on hand-written transcripts: what a manager would see in the findings."""

from __future__ import annotations

from callcoach.pipeline.models import Category, Segment


def _call(*turns: tuple[str, str]) -> list[Segment]:
    out, t = [], 0.0
    for speaker, text in turns:
        out.append(Segment(speaker=speaker, start=t, end=t + 3.0, text=text))  # type: ignore[arg-type]
        t += 3.5
    return out


def test_price_objection_from_client_is_found_and_handling_judged(text_analyzer) -> None:
    segments = _call(
        ("manager", "Лицензия на год стоит триста тысяч рублей."),
        ("client", "Ого, это для нас слишком дорого, такой бюджет мы не выделим."),
        ("manager", "Понимаю. Давайте посчитаем, сколько вы сэкономите за год."),
        ("client", "Хорошо, присылайте расчёт."),
    )
    f = text_analyzer.analyze_transcript(segments)
    price = [o for o in f.objections if o.category == "price"]
    assert price, f.objections
    assert "дорого" in price[0].quote
    assert price[0].handled is True
    assert "сэкономите" in price[0].manager_reply
    assert price[0].recommendation
    # the manager quoting a price is not an objection
    assert all(o.start != segments[0].start for o in f.objections)


def test_unanswered_objection_is_not_handled(text_analyzer) -> None:
    f = text_analyzer.analyze_transcript(
        _call(
            ("manager", "Добрый день, компания Вектор, хотим предложить вам телефонию."),
            ("client", "Мы уже много лет работаем с другим оператором и всем довольны."),
            ("manager", "Хорошо, всего доброго."),
        )
    )
    assert [o.category for o in f.objections] == ["has_alternative"]
    assert f.objections[0].handled is False


def test_objection_outside_the_ten_becomes_a_candidate_not_a_forced_category(text_analyzer) -> None:
    f = text_analyzer.analyze_transcript(
        _call(
            ("manager", "Готовы подписать договор?"),
            (
                "client",
                "Сначала наша служба информационной безопасности должна проверить ваше решение. "
                "Без их заключения мы ничего не подпишем.",
            ),
            ("manager", "Какие документы нужны?"),
        )
    )
    assert f.objections == []
    assert f.new_category_candidates and "безопасности" in f.new_category_candidates[0].quote


def test_custom_category_is_used(text_analyzer) -> None:
    custom = Category(
        code="security_review",
        name="Проверка службой безопасности",
        description="Клиент не может купить, пока служба безопасности не проверит продукт.",
        examples=[
            "Сначала безопасники должны всё проверить.",
            "Без заключения службы безопасности не подпишем.",
            "Нам нужна проверка информационной безопасности.",
        ],
        recommendation="Предложите пакет документов для службы безопасности.",
    )
    f = text_analyzer.analyze_transcript(
        _call(("client", "Пока наша служба безопасности не даст добро, мы ничего подписывать не будем.")),
        [custom],
    )
    assert [o.category for o in f.objections] == ["security_review"]
    assert f.objections[0].recommendation.startswith("Предложите")


def test_sentiment_topic_stats_summary(text_analyzer) -> None:
    f = text_analyzer.analyze_transcript(
        _call(
            ("manager", "Добрый день, ваш заказ готов к отправке, когда удобно доставить?"),
            ("client", "Отлично, спасибо большое! Привезите завтра до обеда."),
            ("manager", "Курьер позвонит за час до приезда."),
            ("client", "Прекрасно, вы очень выручили, спасибо!"),
        )
    )
    assert f.sentiment.overall.label == "positive"
    assert f.sentiment.client is not None and f.sentiment.manager is not None
    assert f.topic.label == "order"
    assert f.stats.manager_questions == 1
    assert 0 < f.stats.talk_ratio < 1
    assert f.summary and 1 <= f.summary.count(".") <= 4
    assert f.objections == []


def test_a_long_call_is_judged_by_what_it_is_for(text_analyzer) -> None:
    """In a long call most turns do not say what the call is for, and their talk of prices,
    discounts and payment reads as selling; the whole call says a dealer is asking to represent
    us (a partnership) or a regular client is reordering (an order)."""
    dealer = _call(
        (
            "client",
            "Алло, здравствуйте. Меня Геннадий зовут, у нас оптовая база в Оренбурге, стройматериалы.",
        ),
        ("manager", "Здравствуйте, Геннадий. Слушаю вас."),
        ("client", "Мы хотели бы взять ваши утеплители в свой ассортимент, стать представителем по области."),
        ("manager", "Интересно. А сколько у вас точек и кто покупатели?"),
        ("client", "Три склада, в основном бригады и частники, которые дома строят. Плюс пара застройщиков."),
        (
            "manager",
            "Понял. Для региональных представителей у нас отдельный прайс, "
            "скидка от розницы двадцать процентов.",
        ),
        ("client", "Понятно. А логистику до нас кто оплачивает?"),
        (
            "manager",
            "До ста километров от нашего склада везём сами, дальше пополам. "
            "При объёме от фуры в месяц скидка двадцать пять.",
        ),
        ("client", "Для начала, думаю, возьмём полфуры, а там посмотрим по продажам."),
        ("manager", "Хорошо, на первые три месяца так и запишем."),
        ("client", "А эксклюзив по области вы даёте? Не хочется, чтобы соседи по рынку торговали тем же."),
        ("manager", "Эксклюзив даём после полугода работы, если план выполняется."),
        ("client", "Ну, это справедливо. А по оплате как? Отсрочка есть?"),
        ("manager", "Первые поставки по предоплате, потом отсрочка тридцать дней."),
        ("client", "Понятно. У нас самих клиенты платят через месяц-полтора, так что разберёмся."),
        ("manager", "Если понадобится, после третьей поставки можно обсудить сорок пять дней."),
        ("client", "Ладно, это уже можно обсуждать. А рекламные материалы, стенды, образцы дадите?"),
        ("manager", "Да, стенд и образцы бесплатно, и обучение ваших продавцов проведём."),
        ("client", "Хорошо. Тогда пришлите проект дилерского договора, юристы посмотрят."),
        ("manager", "Сегодня же отправлю вместе с условиями для представителей."),
        ("client", "Договорились, ждём. Спасибо."),
        ("manager", "Спасибо вам, Геннадий, до связи."),
    )
    assert text_analyzer.analyze_transcript(dealer).topic.label == "partnership"
    reorder = _call(
        ("manager", "Добрый день, компания «Фермерский двор», Ольга, слушаю вас."),
        ("client", "Ольга, здравствуйте, это Марат из кафе «Листья», мы у вас каждую неделю берём."),
        ("manager", "Да, Марат, узнала. Повторяем прошлый заказ?"),
        ("client", "В целом да, только творога в этот раз побольше, килограммов двенадцать."),
        ("manager", "Двенадцать творога, записала. Сметана как обычно, шесть банок?"),
        ("client", "Сметаны восемь. И сыр адыгейский добавьте, три головки."),
        ("manager", "Хорошо. Молоко оставляем двадцать литров?"),
        ("client", "Двадцать, да. Яйца тоже как в прошлый раз, десять лотков."),
        ("manager", "Поняла. Привезём, как обычно, в четверг утром."),
        (
            "client",
            "Вот с четвергом беда: у нас в пятницу банкет, а готовить начинаем в среду. "
            "В четверг нам уже поздно.",
        ),
        ("manager", "Могу поставить вас на среду, но машина будет после обеда."),
        ("client", "После обеда годится, лишь бы в среду."),
        ("manager", "Отлично, среда после обеда. Сумма выходит сорок одна тысяча двести."),
        ("client", "Оплатим как всегда, по счёту. Счёт на почту пришлёте?"),
        ("manager", "Да, сразу после оформления. Накладные водитель привезёт."),
        ("client", "Хорошо. И напомните водителю, что заезд со двора, с улицы там не пустят."),
        ("manager", "Отмечу в заявке: заезд со двора. Контакт для водителя ваш?"),
        ("client", "Лучше нашего су-шефа, Дениса, я сброшу вам номер сообщением."),
        ("manager", "Договорились. Всё подтвердим сообщением сегодня вечером."),
        ("client", "Спасибо, Ольга, до связи."),
    )
    assert text_analyzer.analyze_transcript(reorder).topic.label == "order"


def test_custom_topic_is_accepted(text_analyzer) -> None:
    f = text_analyzer.analyze_transcript(
        _call(("client", "Хочу вернуть товар и получить деньги назад, он мне не подошёл по размеру.")),
        topics={"refund": ["Клиент хочет вернуть товар и получить деньги обратно.", "Оформите возврат."]},
    )
    assert f.topic.label == "refund"


def test_summarize_hook_replaces_template_and_failure_keeps_it(text_analyzer) -> None:
    segments = _call(("client", "Сейчас совсем некогда, перезвоните завтра."))
    assert (
        text_analyzer.analyze_transcript(segments, summarize=lambda f: "LLM summary.").summary
        == "LLM summary."
    )

    def broken(_f):  # type: ignore[no-untyped-def]
        raise RuntimeError("llm down")

    assert text_analyzer.analyze_transcript(segments, summarize=broken).summary.startswith("Звонок")


def test_unknown_speakers_still_find_client_objections(text_analyzer) -> None:
    segments = [
        s.model_copy(update={"speaker": "unknown"})
        for s in _call(
            ("unknown", "Здравствуйте, меня зовут Андрей, компания Альфа, предлагаем вам нашу систему."),
            ("unknown", "Я про вашу компанию ничего не слышал, боюсь, что вы пропадёте после оплаты."),
        )
    ]
    f = text_analyzer.analyze_transcript(segments)
    assert f.speakers_known is False
    assert [o.category for o in f.objections] == ["lack_of_trust"]


def test_classify_text_ranks_categories(analyzer) -> None:
    ranked = analyzer.classify_text("А у конкурентов то же самое дешевле и гарантия больше")
    assert ranked[0][0].code == "competitors"
    assert len(ranked) == 10 and ranked[0][1] >= ranked[1][1]
    assert all(0.0 <= score <= 1.0 for _, score in ranked)


def test_empty_transcript_gives_valid_empty_findings(text_analyzer) -> None:
    f = text_analyzer.analyze_transcript([])
    assert f.segments == [] and f.objections == []
    assert f.sentiment.overall.label == "neutral"
    assert f.topic.label == "unknown"


def test_neutral_questions_about_price_terms_and_competitors_are_not_objections(text_analyzer) -> None:
    f = text_analyzer.analyze_transcript(
        _call(
            ("manager", "Здравствуйте, это Марина, компания ТеплоДом, монтируем отопление в частных домах."),
            ("client", "Да, здравствуйте, мы как раз думаем менять котёл. А сколько у вас стоит монтаж?"),
            ("manager", "Монтаж под ключ от девяноста тысяч, точнее скажет инженер после замера."),
            ("client", "Понятно. А оплату можно разбить на две части?"),
            ("manager", "Можно: половина до начала работ, половина после пуска."),
            ("client", "Хорошо, давайте замер в субботу утром, адрес пришлю сообщением."),
        )
    )
    assert f.objections == [] and f.new_category_candidates == []


def test_several_objections_in_one_call_each_with_quote_time_and_advice(text_analyzer) -> None:
    segments = _call(
        ("manager", "Добрый день, компания СкладСофт, учёт для оптовых складов. Удобно говорить?"),
        ("client", "Слушаю."),
        ("manager", "Подписка на систему для вашего склада выйдет в сорок тысяч в месяц."),
        ("client", "Сорок тысяч каждый месяц? Нет, для нас это слишком дорого, столько мы не потянем."),
        ("manager", "Понимаю. Можем начать с тарифа на один склад, это вдвое дешевле."),
        ("client", "Всё равно решать буду не я, такие покупки у нас утверждает только собственник."),
        ("manager", "Давайте я подготовлю для него короткий расчёт окупаемости?"),
        ("client", "Присылайте, передам."),
    )
    f = text_analyzer.analyze_transcript(segments)
    assert [o.category for o in f.objections] == ["price", "cannot_decide"]
    for o, turn in zip(f.objections, (segments[3], segments[5]), strict=True):
        assert o.start == turn.start and o.quote in turn.text
        assert o.recommendation and o.handled is True
