"""Item text embeddings with all-MiniLM-L6-v2 (ONNX), as sentence-transformers computes them.

Token embeddings from the ONNX model are mean-pooled over the attention mask and L2-normalised.
Texts are tokenised with the model's tokenizer.json (lower-casing BERT WordPiece), truncated to 256
tokens (sentence-transformers' max_seq_length for this model) and padded per batch. Embeddings are
cached in a .npy file whose name is a hash of the model file and the texts.
"""
from __future__ import annotations

import hashlib
import html
from pathlib import Path
import numpy as np

DEFAULT_MODEL_DIRS = (Path("/work/shared/models/all-MiniLM-L6-v2"), Path("/work/main/models/all-MiniLM-L6-v2"))
MAX_TOKENS = 256

# Item text templates (str.format with name, genre and type); genre is the comma-separated list.
TEMPLATES: dict[str, str] = {
    "dot": "{name}. {genre}. {type}",
    "comma": "{name}, {genre}, {type}",
    "space": "{name} {genre} {type}",
    "newline": "{name}\n{genre}\n{type}",
    "labelled": "Name: {name}. Genre: {genre}. Type: {type}",
    "name": "{name}",
    "genre-type": "{genre}. {type}",
}


def find_model_dir(preferred: Path | None = None) -> Path:
    """A directory holding onnx/model.onnx and tokenizer.json."""
    for d in ([preferred] if preferred else []) + list(DEFAULT_MODEL_DIRS):
        if (d / "onnx" / "model.onnx").exists() and (d / "tokenizer.json").exists():
            return d
    raise FileNotFoundError("all-MiniLM-L6-v2 ONNX model with tokenizer.json not found")


def item_texts(names: list[str], genres: list[str], types: list[str], template: str,
               unescape: bool = True) -> list[str]:
    """One text per item; `unescape` turns HTML entities in names (&#039;) into characters."""
    fmt = TEMPLATES[template]
    return [fmt.format(name=html.unescape(n) if unescape else n, genre=g, type=t)
            for n, g, t in zip(names, genres, types)]


def embed(texts: list[str], model_dir: Path, batch_size: int = 64, threads: int = 2) -> np.ndarray:
    """(len(texts), 384) float32 unit vectors."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model_dir / "onnx" / "model.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        batch = order[start:start + batch_size]
        enc = tokenizer.encode_batch([texts[i] for i in batch])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        tokens = session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (tokens * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        out[batch] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def cached_embeddings(texts: list[str], model_dir: Path, cache_dir: Path) -> np.ndarray:
    """embed(texts) read from / written to cache_dir."""
    digest = hashlib.sha256((model_dir / "onnx" / "model.onnx").read_bytes())
    digest.update("\n".join(texts).encode())
    path = cache_dir / f"minilm_{digest.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    vectors = embed(texts, model_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
