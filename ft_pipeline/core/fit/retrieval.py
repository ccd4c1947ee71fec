"""BM25 retrieval for the fit assessment's arms (bm25s): the training examples most like a
question (retrieved few-shot) and the knowledge-folder chunks most like it (RAG).

Both indexes are built once per assessment and queried with every held-out question. Tokens are
lower-cased words with English stop words removed, stemmed with the Snowball English stemmer
(PyStemmer), so "cards" finds "card". Ties and empty matches keep corpus order, so retrieval is deterministic.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

KNOWLEDGE_SUFFIXES = (".txt", ".md")


@functools.lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english").stemWords


def _tokens(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False, return_ids=False)


class Bm25Index:
    """Top-k search over `texts`; returns corpus positions, best first."""

    def __init__(self, texts: list[str]):
        import bm25s

        self.size = len(texts)
        self._retriever = None
        if texts:
            self._retriever = bm25s.BM25()
            self._retriever.index(_tokens(texts), show_progress=False)

    def top_k(self, queries: list[str], k: int) -> list[list[int]]:
        """For each query, the positions of its k best matches (fewer when the corpus is smaller);
        only matches that share a word with the query count."""
        k = min(k, self.size)
        if k <= 0 or self._retriever is None:
            return [[] for _ in queries]
        results, scores = self._retriever.retrieve(_tokens(queries), k=k, show_progress=False, n_threads=1)
        return [[int(i) for i, s in zip(row, row_scores) if s > 0] for row, row_scores in zip(results, scores)]


@dataclass(frozen=True)
class Chunk:
    source: str  # file name relative to the knowledge folder
    index: int  # chunk number within the file
    text: str


def redacted_knowledge(chunks: list[Chunk], config) -> list[Chunk]:
    """The chunks with PII redacted by the records' engine (`config`: the task's RedactionConfig):
    a knowledge folder is a user's documents, and what a prompt shows can land in an answer file.
    A document named after a person is cited by its alias (core/data/source_names.py)."""
    from ft_pipeline.core.data.redaction import redact_documents
    from ft_pipeline.core.data.source_names import safe_name

    texts = redact_documents([c.text for c in chunks], config)
    names = {name: safe_name(name, config) for name in dict.fromkeys(c.source for c in chunks)}
    return [Chunk(names[c.source], c.index, text) for c, text in zip(chunks, texts)]


def load_knowledge(folder: str | Path, chunk_words: int = 120, overlap_words: int = 20) -> list[Chunk]:
    """The folder's .txt/.md documents (recursively, in name order) cut into chunks of about
    `chunk_words` words. Paragraphs are kept whole when they fit; a longer one is split into
    windows that overlap by `overlap_words`, so a fact on a boundary is in one chunk whole."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: knowledge folder not found")
    if not 0 <= overlap_words < chunk_words:
        raise ValueError("fit.overlap_words must be >= 0 and below fit.chunk_words")
    chunks: list[Chunk] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in KNOWLEDGE_SUFFIXES):
        name = path.relative_to(folder).as_posix()
        pieces: list[str] = []
        current: list[str] = []
        for paragraph in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            words = paragraph.split()
            if not words:
                continue
            if current and len(current) + len(words) > chunk_words:
                pieces.append(" ".join(current))
                current = []
            if len(words) > chunk_words:
                step = chunk_words - overlap_words
                pieces.extend(" ".join(words[i:i + chunk_words]) for i in range(0, len(words) - overlap_words, step))
                continue
            current.extend(words)
        if current:
            pieces.append(" ".join(current))
        chunks.extend(Chunk(name, i, text) for i, text in enumerate(pieces))
    if not chunks:
        raise ValueError(f"{folder}: knowledge folder holds no .txt or .md text")
    return chunks
