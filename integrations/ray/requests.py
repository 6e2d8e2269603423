"""What the router reads from a request: its prompt length and the hashes of its leading prompt blocks.

The router sees a request only as the arguments of the deployment call (`handle.generate.remote(request)`),
before any tokenizer runs. Convention (the `VLLMReplica` deployment accepts the same): the first
positional argument, or the keyword `request`, is a mapping with `prompt_token_ids` (a list of ints) or
`prompt` (a string). Token ids give exact lengths and vLLM-like blocks of `block_tokens` tokens; a string
is counted as len / `chars_per_token` tokens and hashed in blocks of block_tokens x chars_per_token
characters. Hashes are chained (each covers the whole prefix up to its block) and stable across processes.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any, Mapping, Sequence

from .state import RequestInfo


_TOKEN_ID_END = 2 ** 63
"""Token ids are hashed as int64 (and no vocabulary comes near)."""


def _chain(pieces: Sequence[bytes]) -> tuple[int, ...]:
    out, h = [], b""
    for piece in pieces:
        h = hashlib.blake2b(h + piece, digest_size=8).digest()
        out.append(int.from_bytes(h, "little", signed=True))
    return tuple(out)


def token_block_hashes(token_ids: Sequence[int], block_tokens: int) -> tuple[int, ...]:
    """Chained hashes of the full blocks of a token-id prompt."""
    full = len(token_ids) // block_tokens
    return _chain([struct.pack(f"<{block_tokens}q", *token_ids[i * block_tokens:(i + 1) * block_tokens])
                   for i in range(full)])


def text_block_hashes(text: str, block_chars: int) -> tuple[int, ...]:
    """Chained hashes of the full blocks of a text prompt."""
    data = text.encode("utf-8")
    return _chain([data[i:i + block_chars] for i in range(0, len(data) - block_chars + 1, block_chars)])


def check_reading(block_tokens: int, chars_per_token: float) -> None:
    """The router's options for reading prompts (ValueError naming the option): checked when the router is
    configured, not at its first request."""
    if isinstance(block_tokens, bool) or not isinstance(block_tokens, int) or not 1 <= block_tokens <= 1 << 20:
        raise ValueError(f"ewsjf router: block_tokens must be an integer in [1, 2**20], got {block_tokens!r}")
    if isinstance(chars_per_token, bool) or not isinstance(chars_per_token, (int, float)) \
            or not 0 < chars_per_token <= 1e6:
        raise ValueError(f"ewsjf router: chars_per_token must be a number in (0, 1e6], got {chars_per_token!r}")


def find_payload(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The request mapping among a call's arguments, or None."""
    for value in (kwargs.get("request"), *args):
        if isinstance(value, Mapping) and ("prompt_token_ids" in value or "prompt" in value):
            return value
    return None


def request_info(request_id: str, payload: Mapping[str, Any], block_tokens: int = 16,
                 chars_per_token: float = 4.0) -> RequestInfo:
    """RequestInfo of a request mapping; a malformed prompt raises ValueError naming the request."""
    ids = payload.get("prompt_token_ids")
    if ids is not None:
        if not isinstance(ids, Sequence) or isinstance(ids, (str, bytes)) or not ids \
                or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < _TOKEN_ID_END for t in ids):
            raise ValueError(f"request {request_id!r}: prompt_token_ids must be a non-empty list of ints in "
                             f"[0, 2**63)")
        return RequestInfo(request_id, len(ids), token_block_hashes(ids, block_tokens), block_tokens)
    text = payload.get("prompt")
    if not isinstance(text, str) or not text:
        raise ValueError(f"request {request_id!r}: needs prompt_token_ids or a non-empty prompt string")
    tokens = max(1, round(len(text) / chars_per_token))
    block_chars = max(1, round(block_tokens * chars_per_token))
    return RequestInfo(request_id, tokens, text_block_hashes(text, block_chars), block_tokens)
