"""The knowledge room's section (``knowledge:``, ``SOPHIA_KNOWLEDGE__…``): where chunks live and how they are cut."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class KnowledgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        description="The chunk store: None for the embedded store in the data folder "
        "(knowledge/knowledge.db), sqlite:///… for the embedded store elsewhere, "
        "postgresql://… for PostgreSQL with pgvector (many instances).",
    )
    chunk_words: int = Field(
        160,
        ge=20,
        le=2000,
        description="Words a chunk holds at most (a longer single turn or sentence stays whole). "
        "160 words and a title fit MiniLM's 256 word pieces, so the whole chunk is embedded.",
    )
    batch_size: int = Field(64, ge=1, le=512, description="Chunks embedded per model call when ingesting.")
    candidates: int = Field(
        100, ge=1, le=5000, description="Hits each half (full text, vectors) ranks before they are fused."
    )
    rrf_k: int = Field(
        10,
        ge=1,
        description="The k of reciprocal rank fusion: weight / (k + rank). 10 rather than the usual 60: "
        "tuned on the demo transcripts of seed 1 (benchmarks/knowledge), where it beat 30 and 60 at "
        "every weighting; a small k lets each half's top hits count more than a long agreeing tail.",
    )
    text_weight: float = Field(
        1.0, ge=0, le=10, description="Weight of the full-text half's ranks in the hybrid fusion."
    )
    vector_weight: float = Field(
        1.0, ge=0, le=10, description="Weight of the vector half's ranks in the hybrid fusion."
    )
    max_k: int = Field(100, ge=1, le=1000, description="The most hits one search may ask for.")
