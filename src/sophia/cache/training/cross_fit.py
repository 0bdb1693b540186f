"""Fine-tune the cross-encoder's top layers in torch (run by ``sophia.cache.training.train``, never imported).

This file runs as a plain script in a throwaway venv with ``torch==2.13.0`` (CPU), numpy and
safetensors, outside the project's dependencies; nothing at run time needs torch. It imports
nothing from ``sophia`` so that the venv needs nothing else.

    python cross_fit.py WORK.npz MODEL_DIR OUT.npz [--layers 4 --frozen 0 --epochs 1 --mined-weight 1 ...]

``WORK.npz`` (written by the prepare step of ``sophia.cache.training.train``) holds the tokenised training pairs, packed:
``ids`` and ``types`` (one row per word piece), ``offsets`` (start of each pair), ``label``,
``weight`` and ``source`` (0 a labelled pair, 1 and 2 a mined unlabelled neighbour, a negative, 3 a
rewrite of a training question, ``sophia.cache.training.rewrites``);
``--mined-weight`` scales the loss weight of the mined ones (0 leaves them out). The model is the
first ``--layers`` blocks of all-MiniLM-L6-v2 (weights from ``MODEL_DIR/model.safetensors``)
with the pair as one input, ``[CLS] a [SEP] b [SEP]`` and token types 0/1, mean-pooled over the
word pieces, then one linear unit (the logit). The embeddings and the bottom ``--frozen`` blocks
stay as shipped in MiniLM; their output is computed once (float16 in memory) and only the blocks
above and the head are trained (AdamW, linear warm-up then decay, weighted binary cross-entropy).
It writes those blocks under their MiniLM names plus ``head.weight``/``head.bias``. The same
arithmetic runs in numpy at run time (``sophia.embedder.minilm``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from torch import nn

HIDDEN, HEADS, FF = 384, 12, 1536


class Block(nn.Module):
    """A BERT encoder layer (post-LayerNorm, exact GELU), named like the MiniLM checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v = (
            nn.Linear(HIDDEN, HIDDEN),
            nn.Linear(HIDDEN, HIDDEN),
            nn.Linear(HIDDEN, HIDDEN),
        )
        self.o, self.ln1 = nn.Linear(HIDDEN, HIDDEN), nn.LayerNorm(HIDDEN, eps=1e-12)
        self.ff1, self.ff2 = nn.Linear(HIDDEN, FF), nn.Linear(FF, HIDDEN)
        self.ln2 = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.drop = nn.Dropout(0.1)

    NAMES = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "o": "attention.output.dense",
        "ln1": "attention.output.LayerNorm",
        "ff1": "intermediate.dense",
        "ff2": "output.dense",
        "ln2": "output.LayerNorm",
    }

    def load(self, w: dict[str, np.ndarray], prefix: str) -> None:
        for mine, theirs in self.NAMES.items():
            module = getattr(self, mine)
            module.weight.data = torch.from_numpy(w[f"{prefix}.{theirs}.weight"].astype(np.float32).copy())
            module.bias.data = torch.from_numpy(w[f"{prefix}.{theirs}.bias"].astype(np.float32).copy())

    def export(self, prefix: str) -> dict[str, np.ndarray]:
        out = {}
        for mine, theirs in self.NAMES.items():
            module = getattr(self, mine)
            out[f"{prefix}.{theirs}.weight"] = module.weight.detach().numpy().copy()
            out[f"{prefix}.{theirs}.bias"] = module.bias.detach().numpy().copy()
        return out

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        hd = HIDDEN // HEADS

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, HEADS, hd).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + bias
        ctx = (self.drop(scores.softmax(-1)) @ v).transpose(1, 2).reshape(b, t, HIDDEN)
        h = self.ln1(x + self.drop(self.o(ctx)))
        return self.ln2(h + self.drop(self.ff2(nn.functional.gelu(self.ff1(h)))))


class Embeddings(nn.Module):
    def __init__(self, w: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.word = torch.from_numpy(w["embeddings.word_embeddings.weight"].astype(np.float32))
        self.pos = torch.from_numpy(w["embeddings.position_embeddings.weight"].astype(np.float32))
        self.type = torch.from_numpy(w["embeddings.token_type_embeddings.weight"].astype(np.float32))
        self.ln = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.ln.weight.data = torch.from_numpy(w["embeddings.LayerNorm.weight"].astype(np.float32))
        self.ln.bias.data = torch.from_numpy(w["embeddings.LayerNorm.bias"].astype(np.float32))

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        return self.ln(self.word[ids] + self.pos[:t] + self.type[types])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def batches(lengths: np.ndarray, rows: np.ndarray, tokens: int, rng: np.random.Generator | None) -> list:
    """Rows cut into batches of similar length (at most ``tokens`` padded word pieces, 64 rows each)."""
    order = rows[np.argsort(lengths[rows], kind="stable")]
    out, start = [], 0
    while start < len(order):
        end = start + 1
        while (
            end < len(order) and (end - start + 1) * int(lengths[order[end]]) <= tokens and end - start < 64
        ):
            end += 1
        out.append(order[start:end])
        start = end
    if rng is not None:
        rng.shuffle(out)
    return out


def padded(store: torch.Tensor, offsets: np.ndarray, lengths: np.ndarray, rows: np.ndarray) -> tuple:
    """Packed rows -> (B, T, ...) padded tensor, the mask of real tokens and the additive attention bias."""
    n = lengths[rows]
    width = int(n.max())
    mask = np.arange(width)[None, :] < n[:, None]
    index = np.where(mask, offsets[rows][:, None] + np.arange(width)[None, :], 0)
    mask_t = torch.from_numpy(mask)
    x = store[torch.from_numpy(index)]
    x[~mask_t] = 0
    bias = torch.zeros(len(rows), 1, 1, width)
    bias.masked_fill_(~mask_t[:, None, None, :], torch.finfo(torch.float32).min)
    return x, mask_t, bias


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=Path)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--frozen", type=int, default=0)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--batch-tokens", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20240)
    parser.add_argument("--init", type=Path, default=None, help="start from these trained blocks and head")
    parser.add_argument(
        "--mined-weight", type=float, default=1.0, help="loss weight of mined negatives (0: leave them out)"
    )
    parser.add_argument(
        "--checkpoints",
        action="store_true",
        help="also write OUT with .epochN before .npz after each whole epoch",
    )
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    data = np.load(args.work)
    ids, types, offsets = data["ids"], data["types"], data["offsets"]
    label, weight = data["label"].astype(np.float32), data["weight"].astype(np.float32)
    source = data["source"] if "source" in data.files else np.zeros(len(label), dtype=np.int8)
    mined = (source == 1) | (source == 2)
    weight = np.where(mined, weight * np.float32(args.mined_weight), weight).astype(np.float32)
    train_rows = np.flatnonzero(data["train"] & ~(mined & (args.mined_weight <= 0)))
    lengths = np.diff(np.append(offsets, len(ids)))
    w = load_file(str(args.model_dir / "model.safetensors"))
    log(
        f"{len(train_rows):,} training pairs, {int(label[train_rows].sum()):,} positive, "
        f"{int(mined[train_rows].sum()):,} mined (weight {args.mined_weight}), {len(ids):,} tokens"
    )

    emb = Embeddings(w)
    frozen = [Block() for _ in range(args.frozen)]
    for i, block in enumerate(frozen):
        block.load(w, f"encoder.layer.{i}")
        block.eval()
    top = nn.ModuleList(Block() for _ in range(args.frozen, args.layers))
    for i, block in enumerate(top, start=args.frozen):
        block.load(w, f"encoder.layer.{i}")
    head = nn.Linear(HIDDEN, 1)
    nn.init.normal_(head.weight, std=0.02)
    nn.init.zeros_(head.bias)
    if args.init is not None:
        start = dict(np.load(args.init))
        for i, block in enumerate(top, start=args.frozen):
            block.load(start, f"encoder.layer.{i}")
        head.weight.data = torch.from_numpy(start["head.weight"].astype(np.float32).reshape(1, -1).copy())
        head.bias.data = torch.from_numpy(start["head.bias"].astype(np.float32).reshape(1).copy())

    # 1. the frozen part, once, float16 in memory (only the training rows)
    started = time.perf_counter()
    store = torch.zeros(len(ids), HIDDEN, dtype=torch.float16)
    ids_t, types_t = torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(types.astype(np.int64))
    with torch.inference_mode():
        for n, rows in enumerate(batches(lengths, train_rows, 4096, None)):
            x_ids, mask, bias = padded(ids_t, offsets, lengths, rows)
            x_types, _, _ = padded(types_t, offsets, lengths, rows)
            x = emb(x_ids, x_types)
            for block in frozen:
                x = block(x, bias)
            index = torch.from_numpy(
                np.concatenate([np.arange(offsets[r], offsets[r] + lengths[r]) for r in rows])
            )
            store[index] = x[mask].half()
            if n % 50 == 0:
                log(f"  frozen layers: batch {n}, {time.perf_counter() - started:.0f}s")
    log(f"frozen part computed in {time.perf_counter() - started:.0f}s")

    # 2. train the top blocks and the head
    params = [{"params": top.parameters(), "lr": args.lr}, {"params": head.parameters(), "lr": args.head_lr}]
    opt = torch.optim.AdamW(params, weight_decay=0.01)
    plan, epoch_ends = [], {}
    whole = math.floor(args.epochs)
    for e in range(whole):
        plan += batches(lengths, train_rows, args.batch_tokens, rng)
        epoch_ends[len(plan) - 1] = e + 1
    if args.epochs > whole:
        extra = batches(lengths, train_rows, args.batch_tokens, rng)
        plan += extra[: int(len(extra) * (args.epochs - whole))]
    warmup = max(1, len(plan) // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (len(plan) - s) / max(1, len(plan) - warmup)))
    )
    top.train()
    started, running = time.perf_counter(), 0.0
    for step, rows in enumerate(plan):
        x, mask, bias = padded(store, offsets, lengths, rows)
        x = x.float()
        for block in top:
            x = block(x, bias)
        m = mask[..., None].float()
        pooled = (x * m).sum(1) / m.sum(1)
        logit = head(pooled)[:, 0]
        y, wt = torch.from_numpy(label[rows]), torch.from_numpy(weight[rows])
        loss = (
            nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none") * wt
        ).sum() / wt.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(top.parameters()) + list(head.parameters()), 1.0)
        opt.step()
        sched.step()
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if step else value
        if step % 200 == 0:
            log(f"  step {step}/{len(plan)} loss {running:.4f} {time.perf_counter() - started:.0f}s")
        if args.checkpoints and step in epoch_ends and step != len(plan) - 1:
            path = args.out.with_name(f"{args.out.stem}.epoch{epoch_ends[step]}{args.out.suffix}")
            save(top, head, args.frozen, path)
            log(f"  epoch {epoch_ends[step]} done, {time.perf_counter() - started:.0f}s: wrote {path}")
    log(f"trained in {time.perf_counter() - started:.0f}s")
    save(top, head, args.frozen, args.out)
    log(f"wrote {args.out}")
    return 0


def save(top: nn.ModuleList, head: nn.Linear, first: int, path: Path) -> None:
    """The trained blocks under their MiniLM names, and the head."""
    out = {}
    for i, block in enumerate(top, start=first):
        out.update(block.export(f"encoder.layer.{i}"))
    out["head.weight"] = head.weight.detach().numpy()[0].copy()
    out["head.bias"] = head.bias.detach().numpy().copy()
    np.savez(path, **out)


if __name__ == "__main__":
    raise SystemExit(main())
