"""The transformers backends, exercised with a tiny BERT built here (no download)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcoach.config import Settings
from callcoach.pipeline.errors import ModelError
from callcoach.pipeline.models import Segment
from tests.helpers import data_dir_with_shared_models

WORDS = "очень дорого спасибо отлично плохо разговор про продажа заказ жалоба этот клиент менеджер".split()


def _tiny_model(folder: Path, labels: dict[int, str]) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *WORDS,
        *list("абвгдеёжзийклмнопрстуфхцчшщъыьэюя:.,!?"),
    ]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
        num_labels=len(labels),
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    model = transformers.BertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_sentiment_and_topic_through_transformers_backend(tmp_path: Path, models_dir: Path) -> None:
    from callcoach.pipeline.text_analysis import TextAnalyzer

    sent = _tiny_model(tmp_path / "sent", {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"})
    nli = _tiny_model(tmp_path / "nli", {0: "entailment", 1: "neutral", 2: "contradiction"})
    data = data_dir_with_shared_models(tmp_path / "data", models_dir)  # the objection model's fit
    settings = Settings(data_dir=data, sentiment_model=str(sent), topic_model=str(nli), _env_file=None)  # type: ignore[call-arg]
    text = TextAnalyzer(settings)
    assert text.versions["sentiment"] == f"hf:{sent}"
    assert text.versions["topic"] == f"hf:{nli}"
    f = text.analyze_transcript(
        [
            Segment(speaker="client", start=0, end=2, text="Очень дорого."),
            Segment(speaker="manager", start=2, end=4, text="Спасибо, отлично."),
        ]
    )
    assert f.sentiment.overall.label in {"positive", "neutral", "negative"}
    assert 0 <= f.sentiment.overall.score <= 1
    assert f.topic.label in {
        "sales",
        "support",
        "consultation",
        "complaint",
        "info_request",
        "order",
        "partnership",
    }


def test_missing_local_model_is_a_clear_error_not_a_download(tmp_path: Path) -> None:
    from callcoach.pipeline.sentiment import TransformersSentiment

    with pytest.raises(ModelError, match="local files"):
        TransformersSentiment(str(tmp_path / "nowhere"))
