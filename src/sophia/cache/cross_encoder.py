"""A small cross-encoder on numpy: both questions read together by the bottom of all-MiniLM-L6-v2.

The pair is one input, ``[CLS] query [SEP] candidate [SEP]`` with token types 0 and 1, run through
the first ``layers`` transformer blocks of the bundled MiniLM, of which the top ones are replaced
by fine-tuned blocks; the last hidden states are mean-pooled and one linear unit gives the logit.
The forward pass is ``sophia.providers.minilm`` itself (``MiniLM.pair_states``), so nothing here
duplicates the network and nothing needs torch.

Only what differs from the installed MiniLM ships: the replaced blocks (float16) and the head, in
the verifier's weight file (``sophia.cache.verifier``). Built by ``python -m sophia.cache.train`` (``make cache-verifier``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sophia.errors import ConfigError
from sophia.providers.minilm import MiniLM

#: prefix of the arrays that hold replaced blocks, named like the MiniLM checkpoint's
BLOCK_PREFIX = "encoder.layer."


class CrossEncoder:
    """``logits(pairs)``: one float per (query, candidate) pair, higher means the same question."""

    def __init__(self, encoder: MiniLM, arrays: dict[str, np.ndarray], layers: int, frozen: int) -> None:
        if not 0 <= frozen < layers <= len(encoder.layers):
            raise ConfigError(f"cross-encoder: {layers} layers with {frozen} frozen does not fit the encoder")
        weights = {
            k: np.asarray(v, dtype=np.float32) for k, v in arrays.items() if k.startswith(BLOCK_PREFIX)
        }
        try:
            replaced = [encoder.make_layer(weights, f"{BLOCK_PREFIX}{i}") for i in range(frozen, layers)]
            self.head_w = np.asarray(arrays["head.weight"], dtype=np.float32).reshape(-1)
            self.head_b = np.float32(np.asarray(arrays["head.bias"]).reshape(-1)[0])
        except KeyError as exc:
            raise ConfigError(f"cross-encoder weights lack {exc}") from exc
        if self.head_w.shape != (encoder.dim,):
            raise ConfigError(f"cross-encoder head has shape {self.head_w.shape}, expected ({encoder.dim},)")
        self.encoder = encoder
        self.layers = (*encoder.layers[:frozen], *replaced)

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.empty(0, dtype=np.float32)
        states = self.encoder.pair_states(pairs, self.layers)
        return (states @ self.head_w + self.head_b).astype(np.float32)

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """``sigmoid(logits)``, in [0, 1]."""
        return (0.5 * (1.0 + np.tanh(0.5 * self.logits(pairs)))).astype(np.float32)
