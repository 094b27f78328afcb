"""Hashed word and character n-grams of a text: features that need no vocabulary and no model.

Every term (a word, a pair of adjacent words, a run of 3 to 5 bytes) is hashed with a fixed function,
so the same text gives the same features in every process and on every machine (Python's own `hash`
of a string changes per process). Terms are folded into as many columns as the caller asks for.

Cost is bounded and low enough for a decision made before every call: only the head and tail of a long
text are read, and all terms are hashed with a few NumPy operations over the whole text at once. A
polynomial prefix hash (`prefix[i]` = sum of byte j times P**j, modulo 2**64) gives the hash of any
substring from two prefix values and one multiplication by the inverse power of P, so every n-gram and
every word is hashed without a Python loop over them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_TEXT_DIMS", "hashed_terms", "normalize_text", "text_features"]

DEFAULT_TEXT_DIMS = 4096
"""Columns of `text_features` when the caller names none: few collisions for prompt-sized texts."""

# A long prompt's topic shows in its head and its question in its tail; the middle adds cost, not signal.
_HEAD, _TAIL = 3000, 1000
_DIGIT = re.compile(r"\d")
_ASCII_DIGITS = str.maketrans("123456789", "000000000")
_CHAR_NGRAMS = (3, 4, 5)
_CHAR_SHARE = 0.7
"""Share of the squared norm given to character n-grams; words and word pairs get the rest."""

_U64 = np.uint64
_PRIME = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64
_PRIME_U64 = _U64(_PRIME)
# Multiplying by an odd constant and keeping the high half spreads every input bit over the result
# (multiplicative hashing); one multiply and one shift replace a longer finalizer.
_MIX, _HIGH = _U64(0xBF58476D1CE4E5B9), _U64(32)
_PAIR_SALT = _U64(0x2545F4914F6CDD1D)
_CHAR_SALTS = np.array([n * 0x632BE59BD9B4E019 % 2**64 for n in _CHAR_NGRAMS], dtype=np.uint64)
# Bytes that belong to a word: ASCII letters, digits and underscore, and every byte of a non-ASCII
# character (so words in any script are kept whole).
_WORD_BYTE = np.zeros(256, dtype=np.int8)
_WORD_BYTE[list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] = 1
_WORD_BYTE[128:] = 1
_WORD_FLAGS = _WORD_BYTE.tobytes()
"""`_WORD_BYTE` as a `bytes.translate` table: a text's flags in one pass, without an array gather."""


@functools.cache
def _tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """P**i and P**-i modulo 2**64 for i < size.

    Built once per size (a power of two), on first use.
    """
    with np.errstate(over="ignore"):
        up = np.cumprod(np.full(size, _U64(_PRIME), dtype=np.uint64))
        down = np.cumprod(np.full(size, _U64(pow(_PRIME, -1, 2**64)), dtype=np.uint64))
    one = np.ones(1, dtype=np.uint64)
    return np.concatenate([one, up[:-1]]), np.concatenate([one, down[:-1]])


def normalize_text(text: str) -> str:
    """The text the n-grams are read from: lowercased, digits folded to 0, whitespace collapsed.

    Texts over 4,000 characters keep their first 3,000 and last 1,000. Digits are folded because the
    numbers of a word problem say little about its difficulty, while their shape (digits, decimals) may.
    """
    if len(text) > _HEAD + _TAIL:
        text = text[:_HEAD] + " " + text[-_TAIL:]
    if text.isascii():  # the ASCII digits are all `\d` matches there, and a table folds them in one pass
        return " ".join(text.lower().translate(_ASCII_DIGITS).split())
    return " ".join(_DIGIT.sub("0", text.lower()).split())


def _term_hashes(text: str) -> tuple[np.ndarray, int]:
    """Hashes of the character n-grams, then of the words and word pairs, of a normalized text.

    Returns the hashes and how many of them (the first ones) are character n-grams.
    """
    raw = np.frombuffer((" " + text + " ").encode("utf-8"), dtype=np.uint8)
    size = raw.size
    up, down = _tables(max(1 << 14, 1 << (size + 1).bit_length()))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64 on purpose
        prefix = np.zeros(size + 1, dtype=np.uint64)
        np.cumsum(raw * up[:size], out=prefix[1:])
        # The text is padded with spaces, so word bytes always start and end inside it, in pairs.
        flags = _WORD_BYTE[raw]
        edges = np.flatnonzero(flags[1:] != flags[:-1]) + 1
        first, last = edges[0::2], edges[1::2]
        words = (prefix[last] - prefix[first]) * down[first]
        # Every term is written straight into one array: character n-grams, words, word pairs.
        counts = [max(size - n + 1, 0) for n in _CHAR_NGRAMS]
        chars = sum(counts)
        hashes = np.empty(chars + max(2 * words.size - 1, 0), dtype=np.uint64)
        # One n at a time, over contiguous slices of the prefix (no gather): all n-grams of size n are
        # prefix[n:] - prefix[:-n]. Their order does not matter to the counts (every n-gram weighs the
        # same), so they come grouped by n rather than by where they start.
        at = 0
        for n, count, salt in zip(_CHAR_NGRAMS, counts, _CHAR_SALTS, strict=True):
            gram = hashes[at : at + count]
            np.subtract(prefix[n:], prefix[:count], out=gram)
            gram *= down[:count]
            gram += salt
            at += count
        hashes[at : at + words.size] = words
        pairs = hashes[at + words.size :]
        np.multiply(words[:-1], _U64(_PRIME), out=pairs)
        pairs += words[1:]
        pairs += _PAIR_SALT
        hashes *= _MIX
    hashes >>= _HIGH
    return hashes, chars


@functools.cache
def _column_tables(size: int, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.uint64, np.uint64]:
    """For `_term_columns` into 2**bits columns: P**i, then P**-i, the n-gram salts and the pair salt
    each times the column multiplier (mod 2**64), for i < size, and the shift that leaves a column.
    Built once per size and width.

    A term's column is bits 32 to 32 + bits of `hash * _MIX` (the hash's high half, masked). The same
    bits of `hash * (_MIX << (32 - bits))` are its top bits, so one shift gives the column; and that
    multiplier is folded into the factors every hash is already multiplied by, so it costs nothing.
    """
    up, down = _tables(size)
    multiplier = (int(_MIX) << (32 - bits)) % 2**64
    pair_salt = _U64(int(_PAIR_SALT) * multiplier % 2**64)
    return up, down * _U64(multiplier), _CHAR_SALTS * _U64(multiplier), pair_salt, _U64(64 - bits)


def _term_columns(text: str, bits: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Every term of a normalized text as (column, weight), for 2**bits columns (1 <= bits <= 32).

    The terms, columns and weights of `_term_hashes` with `hashed_terms`' shares, in another order, for
    a decision on one prompt: the columns come out of the hashes' arithmetic directly, and the n-grams
    of every size are one block (a row per start: its 3-, 4- and 5-gram), so a text takes a fixed few
    NumPy calls. Returns the columns (int64), the weights (float64) and the sum of the weights (the
    squared norm `hashed_terms` divides by, before the square roots).
    """
    data = (" " + text + " ").encode("utf-8")
    size = len(data)
    up, down, salts, pair_salt, shift = _column_tables(max(1 << 14, 1 << (size + 1).bit_length()), bits)
    # prefix[i] = hash of the first i bytes; two slots of slack past the end are read by the last rows'
    # 4- and 5-grams that run past the text, which are dropped.
    prefix = np.empty(size + 3, dtype=np.uint64)
    prefix[0] = 0
    body = prefix[1 : size + 1]
    np.multiply(np.frombuffer(data, dtype=np.uint8), up[:size], out=body)
    np.add.accumulate(body, out=body)
    # A word starts or ends after byte i where flags[i] != flags[i + 1] (the text is padded with spaces,
    # so bounds come in pairs); the prefix and the powers shifted by one read there at i + 1.
    flags = np.frombuffer(data.translate(_WORD_FLAGS), dtype=np.int8)
    bounds = (flags[1:] != flags[:-1]).nonzero()[0]
    words = bounds.size // 2
    word_terms = max(2 * words - 1, 0)
    starts = max(size - 2, 0)
    chars = starts + max(starts - 1, 0) + max(starts - 2, 0)
    columns = np.empty(word_terms + 3 * starts, dtype=np.uint64)
    if words:
        ends = prefix[1:].take(bounds)
        hashed = columns[:words]
        np.subtract(ends[1::2], ends[0::2], out=hashed)
        hashed *= down[1:].take(bounds[0::2])
        pairs = columns[words:word_terms]
        np.multiply(hashed[:-1], _PRIME_U64, out=pairs)
        pairs += hashed[1:]
        pairs += pair_salt
    # Row i holds the 3-, 4- and 5-gram starting at byte i: prefix[i + n] - prefix[i], times P**-i.
    grams = columns[word_terms:].reshape(starts, 3)
    np.subtract(
        np.ndarray((starts, 3), np.uint64, prefix, 3 * prefix.itemsize, (8, 8)),
        prefix[:starts, None],
        out=grams,
    )
    grams *= down[:starts, None]
    grams += salts
    # Only the last two rows run past the text: (row -2: 5-gram) and (row -1: 4- and 5-grams). Moving
    # the last row's 3-gram into the first of them leaves every real n-gram in front, then the rest.
    if starts >= 2:
        grams[-2, 2] = grams[-1, 0]
    columns = columns[: word_terms + chars]
    columns >>= shift
    shares = np.empty(columns.size)
    if word_terms:
        shares[:word_terms] = (1 - _CHAR_SHARE) / word_terms
    if chars:
        shares[word_terms:] = _CHAR_SHARE / chars
    norm = (_CHAR_SHARE if chars else 0.0) + ((1 - _CHAR_SHARE) if words else 0.0)
    return columns.view(np.int64), shares, norm


def hashed_terms(text: str, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero columns of one text's hashed n-gram vector: (column indices, float32 values).

    Columns are sorted and unique, and the vector has unit L2 norm (no columns at all for a text
    without characters). A column holds the square root of its terms' weighted occurrences (repeats
    count, but less and less); character n-grams carry 70% of the squared norm and words with word
    pairs 30%, whatever the text's length, so neither kind drowns the other. One weighted `bincount`
    does the counting, which keeps a prompt at a few hundred microseconds.
    """
    hashes, chars = _term_hashes(normalize_text(text))
    words = hashes.size - chars
    if hashes.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
    buckets = (hashes & _U64(dims - 1) if dims & (dims - 1) == 0 else hashes % _U64(dims)).astype(np.intp)
    shares = np.repeat(
        (_CHAR_SHARE / chars if chars else 0.0, (1 - _CHAR_SHARE) / words if words else 0.0), (chars, words)
    )
    totals = np.bincount(buckets, weights=shares, minlength=dims)
    cols = np.flatnonzero(totals)
    values = np.sqrt(totals[cols])
    return cols, (values / np.sqrt(np.dot(values, values))).astype(np.float32)


def text_features(texts: Sequence[str], *, dims: int = DEFAULT_TEXT_DIMS) -> np.ndarray:
    """Hashed word and character n-gram vectors of `texts`: float32, shape (len(texts), dims).

    Terms are words, adjacent word pairs and 3- to 5-byte runs of the text as `normalize_text` leaves
    it (lowercased, digits folded to 0, whitespace collapsed, long texts clipped to head and tail).
    Each row has unit L2 norm, so the dot product of two rows is their cosine similarity; an empty
    text gives a row of zeros. Deterministic across processes and machines; needs only NumPy.
    """
    if isinstance(texts, str):
        raise TypeError("text_features takes a sequence of texts, not one string")
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ValueError(f"dims must be a positive integer, got {dims!r}")
    out = np.zeros((len(texts), dims), dtype=np.float32)
    for row, text in enumerate(texts):
        cols, values = hashed_terms(text, dims)
        out[row, cols] = values
    return out
