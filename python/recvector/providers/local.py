"""all-MiniLM-L6-v2 (or any BERT-style sentence-transformers ONNX export) on onnxruntime.

Mean pooling over the attention mask, then L2 normalisation, as sentence-transformers does. The
fp32 export is used by default: its vectors do not depend on how texts are batched (the int8 export's
do, down to cosine 0.982), so an entity's vector depends only on its text.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import EmbeddingError
from .base import EmbeddingModel, Purpose

# Where `make install` puts the model the project ships (overridable per mapping: embedding.model_path).
INSTALL_ROOT = Path(os.environ.get("RECVECTOR_SHARE", "/usr/local/share/recvector"))
MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained with 256 word pieces


def default_model_dir(model: str) -> Path:
    return INSTALL_ROOT / "models" / model


_LOADED: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


class LocalEmbeddingModel(EmbeddingModel):
    provider = "local"

    def __init__(self, model: str, model_dir: Path, dimensions: int, batch_size: int = 32,
                 onnx_file: str = "onnx/model.onnx") -> None:
        self.model = model
        self.model_dir = Path(model_dir)
        self.dimensions = dimensions
        self.max_batch_size = batch_size
        self.onnx_file = onnx_file
        self._session, self._tokenizer = self._load()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "LocalEmbeddingModel":
        model = config.get("model", "all-MiniLM-L6-v2")
        model_dir = Path(config.get("model_path") or default_model_dir(model))
        return cls(model, model_dir, int(config.get("dimensions", 384)), int(config.get("batch_size", 32)))

    def _load(self) -> tuple[Any, Any]:
        onnx_path = self.model_dir / self.onnx_file
        tok_path = self.model_dir / "tokenizer.json"
        for p in (onnx_path, tok_path):
            if not p.is_file():
                raise EmbeddingError(
                    f"local model file {p} is missing",
                    provider=self.provider,
                    hint="Run `make install` (it installs the model the project ships), "
                         "or set embedding.model_path to a directory with onnx/model.onnx and tokenizer.json.",
                )
        key = (str(onnx_path), str(tok_path))
        with _LOCK:
            if key not in _LOADED:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                opts = ort.SessionOptions()
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                session = ort.InferenceSession(str(onnx_path), sess_options=opts,
                                               providers=["CPUExecutionProvider"])
                tokenizer = Tokenizer.from_file(str(tok_path))
                tokenizer.enable_truncation(max_length=MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                _LOADED[key] = (session, tokenizer)
            return _LOADED[key]

    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> list[list[float]]:
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        input_names = {i.name for i in self._session.get_inputs()}
        if "token_type_ids" in input_names:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self._session.run(None, feeds)[0]  # (batch, tokens, dim)
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors = pooled / np.clip(norms, 1e-12, None)
        return vectors.astype(np.float32).tolist()

    def embed(self, texts: Sequence[str], purpose: Purpose = "document") -> list[list[float]]:
        """Texts of similar length are batched together (less padding to compute: the fp32 vectors
        do not depend on the batch), and returned in the order given."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.max_batch_size):
            idx = order[start:start + self.max_batch_size]
            for i, vec in zip(idx, self._embed_batch([texts[i] for i in idx], purpose)):
                out[i] = vec
        self.check_dimensions(out)
        return out
