"""Reference phrases for the offline text models. Mostly what is NOT a client objection: the
"none" side of the objection model; also topic and sentiment lines (see the accessors below).

An objection model learnt only from objection examples calls everything an objection, because
a client's answer ("we never measured that"), a request ("check and call me back") or a
condition after a complaint ("fix it by Friday or we leave") shares words with objections. These
lists teach it the ordinary rest of a sales call. They are written in varied wording on purpose
(the classifier compares meaning, not keywords) and share no phrase with the evaluation calls.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

# What clients say that is not an objection.
CLIENT_LINES: tuple[str, ...] = (
    # answering the phone, confirming who they are
    "Да, слушаю вас.",
    "Алло, да, это я.",
    "Удобно, говорите.",
    "Да, я заявку на сайте заполнял.",
    "Было дело, оставлял запрос, слушаю.",
    "Да-да, это я, что вы хотели?",
    "Добрый день, я вас слушаю внимательно.",
    # agreeing, accepting, asking for material
    "Хорошо, присылайте, гляну.",
    "Спасибо, всё ясно.",
    "Отлично, договорились.",
    "Скиньте на почту, я покажу коллегам.",
    "Покажите, интересно взглянуть.",
    "Да, так и сделаем.",
    "Ну давайте попробуем.",
    "Хорошо, жду информацию.",
    "Договорились, жду от вас счёт.",
    "Ладно, отправляйте презентацию, изучу.",
    "Да, пришлите пример договора.",
    "Годится, оформляйте.",
    "Ну хорошо, убедили, давайте дальше.",
    "Записал, жду звонка.",
    "Договор получили, всё в порядке.",
    # interest, questions about the offer
    "Да, мне это интересно.",
    "Ну ладно, любопытно.",
    "Звучит неплохо, расскажите подробнее.",
    "Подскажите, как это работает?",
    "А когда сможете привезти?",
    "Сколько это будет стоить?",
    "Вот это уже интересно, продолжайте.",
    "Это уже аргумент, слушаю дальше.",
    "А какие есть варианты подключения?",
    "Интересно, а обучение сотрудников входит?",
    # answering the manager's discovery questions, stating priorities
    "Не могу сказать, мы такое не замеряли.",
    "Честно, никогда не подсчитывали.",
    "Трудно сказать, цифр по этому не собираем.",
    "Без понятия, этим бухгалтерия занимается.",
    "Для нас главное, чтобы всё работало без перебоев.",
    "Главное для нас, чтобы всё приходило в срок.",
    "Важнее всего скорость и аккуратность.",
    "Нам важно, чтобы отвечали быстро.",
    "Пожалуй, надёжность и цена в первую очередь.",
    "Пока всё работает стабильно, нареканий нет.",
    "Сейчас с этим вроде всё нормально.",
    "Нас интересует полный комплект.",
    "Нам нужно десять рабочих мест.",
    "Раз в месяц примерно.",
    "Человек двадцать в отделе, не больше.",
    "Мы работаем в основном с оптовыми клиентами.",
    "Заказываем обычно к началу квартала.",
    # scheduling and delivery wishes
    "Давайте в четверг с утра.",
    "Во вторник после трёх удобно.",
    "Лучше в пятницу, до обеда.",
    "Привезите к десяти утра, пожалуйста.",
    "Доставьте в субботу, я буду дома.",
    "Можно курьером ближе к вечеру?",
    "Наберите меня через час, я освобожусь.",
    # asking the manager to find out, check, pass on
    "Узнайте и наберите меня.",
    "Уточните, пожалуйста, и сообщите мне.",
    "Проверьте у себя и дайте знать.",
    "Выясните этот момент, тогда продолжим.",
    "Спросите у своих и перезвоните.",
    "Присылайте, передам по назначению.",
    "Хорошо, я покажу это руководителю.",
    # what documents or details they need
    "Нужны копии лицензий и устав.",
    "Пришлите спецификацию и сертификаты.",
    "Требуется техническое описание и схема подключения.",
    "Реквизиты и карточку компании, пожалуйста.",
    "Нам нужен образец акта и счёт-фактуры.",
    # consequences stated after a complaint or a condition (the objection was said before)
    "Если не решите вопрос к пятнице, будем думать о расторжении.",
    "Не наладите за неделю — подключим юристов.",
    "Разберитесь, пожалуйста, а то мы начнём искать замену.",
    "Ждём исправления, иначе придётся пересмотреть договор.",
    "Надеюсь, в этот раз починят быстро.",
    # thanks, goodbyes
    "Спасибо, вы нам очень помогли.",
    "Спасибо, до свидания.",
    "Всего доброго, до свидания.",
    "До связи, хорошего дня.",
    "Благодарю, было полезно.",
    "Понятно, буду думать.",
    "Нашёл, получилось.",
)

# What managers typically say; used when speakers are unknown or guessed from one mixed channel,
# so that the manager's own price quote or offer is not read as the client's objection.
MANAGER_LINES: tuple[str, ...] = (
    "Здравствуйте, вас беспокоит менеджер отдела продаж, можете говорить?",
    "Я составил для вашей компании индивидуальный расчёт.",
    "Годовое обслуживание обойдётся в сто двадцать тысяч.",
    "Хотим предложить вам наш сервис для учёта заказов.",
    "Понимаю ваши сомнения, давайте посчитаем выгоду.",
    "Я согласую с руководителем и вернусь к вам с ответом.",
    "Могу отправить отзывы наших заказчиков.",
    "В какое время лучше созвониться повторно?",
    "У нас своя сервисная служба и гарантия три года.",
    "Горячая линия, слушаю, какой у вас вопрос?",
    "Запуск займёт у нас около десяти дней.",
    "Работаем пятнадцать лет, у нас сотни клиентов.",
    "Давайте я вышлю коммерческое предложение на почту.",
    "Какие бумаги вам для этого понадобятся?",
    "Подключим вас за несколько дней.",
    "Передам вопрос нашим техническим специалистам.",
    "Приношу извинения за неудобства, разберёмся сегодня же.",
    "Ваш заказ собран, когда удобно принять доставку?",
    "Скажите, сколько обращений у вас приходится на день?",
    "Что для вас важнее всего при выборе поставщика?",
    "По условиям оплата частями, первая половина при подписании.",
    "Курьер свяжется с вами заранее.",
    "Можем провести бесплатную демонстрацию на ваших данных.",
    "Подготовлю для руководителя короткую презентацию.",
    "Мы уже внедряли это у компаний вашего профиля, покажу примеры.",
)


@cache
def _extra() -> dict[str, Any]:
    """phrasebook.json: more lines of both kinds and more ways of voicing each standard objection."""
    text = resources.files(__package__).joinpath("phrasebook.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def client_lines() -> tuple[str, ...]:
    return CLIENT_LINES + tuple(str(x) for x in _extra().get("client", []))


def manager_lines() -> tuple[str, ...]:
    return MANAGER_LINES + tuple(str(x) for x in _extra().get("manager", []))


def extra_examples(code: str) -> tuple[str, ...]:
    """More example phrases for a standard category code (none for a custom code)."""
    return tuple(str(x) for x in _extra().get("objections", {}).get(code, []))


def other_objections() -> tuple[str, ...]:
    """Objections outside the standard ten (compliance, procurement rules, a freeze...): they teach
    the model what "an objection, but none of ours" sounds like, so such a turn is proposed as a
    new category instead of being forced into the nearest standard one."""
    return tuple(str(x) for x in _extra().get("other_objections", []))


def topic_examples(label: str) -> tuple[str, ...]:
    """Lines that tell what kind of call this is, for a standard topic label (none for a custom one)."""
    return tuple(str(x) for x in _extra().get("topics", {}).get(label, []))


def topic_neutral_lines() -> tuple[str, ...]:
    """Lines that say nothing of the call's topic (greetings, "yes", "send it"): without them the
    topic model would have to pin every "хорошо, пришлите" on some topic."""
    return tuple(str(x) for x in _extra().get("topic_generic", []))


def sentiment_examples(label: str) -> tuple[str, ...]:
    """Client lines by mood. Calm doubts, conditions and "I don't know"s are neutral; refusing over
    price, distrusting the vendor, complaining and threatening to leave are negative."""
    return tuple(str(x) for x in _extra().get("sentiment", {}).get(label, []))
