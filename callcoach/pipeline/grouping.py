"""Grouping unmatched objections from many calls into proposed new categories."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from callcoach.pipeline.embeddings import Embedder
from callcoach.pipeline.models import ProposedCategory

_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            "",
            "y",
            "",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)
_STOP_POS = {"ADP", "CCONJ", "SCONJ", "PRON", "PART", "DET", "AUX", "PUNCT", "NUM", "INTJ"}
_STOP = {"быть", "мочь", "весь", "это", "такой", "наш", "ваш", "свой", "который", "нет", "сначала", "пока"}


def transliterate_code(text: str, *, taken: Sequence[str] = ()) -> str:
    """Snake-case Latin code matching ``^[a-z][a-z0-9_]{1,48}$``, unique among ``taken``."""
    latin = "".join(_TRANSLIT.get(ch, ch) for ch in text.lower())
    code = re.sub(r"[^a-z0-9]+", "_", latin).strip("_")[:40].strip("_")
    if not code or not code[0].isalpha():
        code = f"new_{code}".strip("_")
    if len(code) < 2:
        code = "new_category"
    base, n = code, 2
    while code in taken:
        code = f"{base}_{n}"
        n += 1
    return code


def group_candidates(
    quotes: Sequence[str],
    embedder: Embedder,
    *,
    threshold: float = 0.4,
    min_size: int = 1,
    existing_codes: Sequence[str] = (),
) -> list[ProposedCategory]:
    """Average-linkage agglomerative grouping of ``quotes`` by cosine similarity.

    Groups merge while their average similarity is at least ``threshold``. Each group is named
    after its key lemmas (natasha) and represented by its most central quotes, biggest first.
    ``embedder`` should be the USE encoder (its similarities are spread out; 0.4 = same matter).
    """
    texts = [q.strip() for q in quotes if q and q.strip()]
    if not texts:
        return []
    v = embedder.encode(texts)
    sims = v @ v.T
    clusters: list[list[int]] = [[i] for i in range(len(texts))]
    while len(clusters) > 1:
        best, pair = -1.0, (0, 0)
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                s = float(sims[np.ix_(clusters[a], clusters[b])].mean())
                if s > best:
                    best, pair = s, (a, b)
        if best < threshold:
            break
        a, b = pair
        clusters[a] = clusters[a] + clusters[b]
        del clusters[b]
    out: list[ProposedCategory] = []
    taken = list(existing_codes)
    for members in sorted(clusters, key=len, reverse=True):
        if len(members) < min_size:
            continue
        centrality = sims[np.ix_(members, members)].mean(axis=1)
        ordered = [texts[members[i]] for i in np.argsort(-centrality)]
        name = _name([texts[i] for i in members]) or _shorten(ordered[0])
        code = transliterate_code(name, taken=taken)
        taken.append(code)
        out.append(
            ProposedCategory(
                name=name, code=code, examples=list(dict.fromkeys(ordered))[:10], size=len(members)
            )
        )
    return out


def _name(texts: Sequence[str]) -> str:
    """Up to three most frequent content lemmas of the group, e.g. 'Проверка служба безопасность'."""
    try:
        from natasha import Doc, MorphVocab, NewsEmbedding, NewsMorphTagger, Segmenter

        segmenter, vocab = Segmenter(), MorphVocab()
        tagger = NewsMorphTagger(NewsEmbedding())
    except Exception:  # natasha missing or broken (it needs setuptools' pkg_resources): use a quote
        return ""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for text in texts:
        doc = Doc(text)
        doc.segment(segmenter)
        doc.tag_morph(tagger)
        seen_here = set()
        for token in doc.tokens:
            if token.pos in _STOP_POS or not token.text.isalpha() or len(token.text) < 3:
                continue
            token.lemmatize(vocab)
            lemma = (token.lemma or token.text).lower()
            if lemma in _STOP or lemma in seen_here:
                continue
            seen_here.add(lemma)
            counts[lemma] += 1
            first_seen.setdefault(lemma, len(first_seen))
    if not counts:
        return ""
    top = sorted(counts, key=lambda w: (-counts[w], first_seen[w]))[:3]
    top.sort(key=lambda w: first_seen[w])
    name = " ".join(top)
    return name[:1].upper() + name[1:]


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"
