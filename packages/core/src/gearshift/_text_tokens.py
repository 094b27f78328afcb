"""Token estimates of plain text, without a tokenizer download.

tiktoken needs to fetch its encodings, which gearshift must not do at run time. For routing and budget
reservations an estimate is enough: English prose runs about 4 characters per token with BPE
tokenizers, code and numbers denser. We count word pieces and punctuation, which tracks cl100k within
roughly 15% on prose and code, and never returns 0 for non-empty text.

ASCII text is counted with byte translations that run in C. Texts over 4,096 characters are sampled:
the pieces in four evenly spaced windows give a pieces-per-character rate for the whole text, so
counting stays O(1) per message at an error of a few percent that no routing decision notices.
Messages, tools and requests are counted from these in `signals._tokens`. `MAX_UNDERCOUNT` bounds how
far a real count may run above an estimate, for what must not be underestimated (the price tier a
budget reservation holds).
"""

from __future__ import annotations

import re

__all__ = ["MAX_UNDERCOUNT", "estimate_tokens", "kept_tokens", "texts_tokens"]

MAX_UNDERCOUNT = 1.2
"""The most a real token count may be, as a multiple of the estimate: the estimate tracks cl100k within
about 15% on prose and code, and the sampling of texts over 4,096 characters adds a few percent (5%
allowed). A bound stated from that, not measured here (tiktoken's encodings are a download)."""

_PIECES = re.compile(r"[A-Za-z]{1,8}|\d{1,3}|[^\sA-Za-z\d]")


_SAMPLE_WINDOWS = 4
_WINDOW_CHARS = 1024
_EXACT_UP_TO = _SAMPLE_WINDOWS * _WINDOW_CHARS

# ASCII fast path: the same count as `_PIECES`, from bytes.translate/replace/count, which run in C.
_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_NOT_SYMBOLS = _LETTERS + b"0123456789" + b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # \s in ASCII
_LETTER_RUNS = bytes(97 if b in _LETTERS else 32 for b in range(256))
_DIGIT_RUNS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
# A run of n letters is ceil(n / 8) pieces: its first letter, then every full 8 of the n - 1 after it.
_LETTER_PIECE = b"a" * 8
_LONG_LETTER_RUN = b"a" * 9
_DIGIT_PIECE, _DIGIT_PAD, _DIGIT_RUN_END = b"0" * 3, b"00", b"00 "
# Long letter runs are measured one by one in texts of this size or more, up to this many.
_MEASURED_FROM, _LONG_RUNS_MEASURED = 2048, 8
_KEPT: dict[str, int] = {}
"""Estimates of texts seen before, by text (see `texts_tokens`)."""
_MAX_KEPT = 2048  # texts of at most 4,096 characters: 8 MB at the very most, then the store starts over
_NEW_COUNTED_ALONE = 4
_SHORT = 24  # below this, one regex pass is cheaper than the translations


def _count(text: str) -> int:
    if len(text) >= _SHORT and text.isascii():
        data = text.encode("ascii")
        symbols = len(data.translate(None, _NOT_SYMBOLS))
        letters = data.translate(_LETTER_RUNS)
        # Letter runs are counted by their starts (after a space, or at the start of the text). A run
        # of n > 8 letters adds (n - 1) // 8 pieces to its first. One scan first tells whether there is
        # any such run. On a long text with few (one "repository" in a system prompt makes a whole
        # history take this path), each is found and measured in place; otherwise each run's first
        # letter becomes a "b" (a replacement of the same length is one scan): the "b"s count the runs
        # and the full 8s of "a"s left the pieces after the first.
        long_run = letters.find(_LONG_LETTER_RUN)
        letter_pieces = -1
        if long_run < 0:
            letter_pieces = letters.count(b" a") + (letters[0] == 97)
        elif len(letters) >= _MEASURED_FROM:
            after_first = 0
            for _ in range(_LONG_RUNS_MEASURED):
                end = letters.find(b" ", long_run + 9)
                end = len(letters) if end < 0 else end
                after_first += (end - long_run - 1) // 8
                long_run = letters.find(_LONG_LETTER_RUN, end)
                if long_run < 0:
                    letter_pieces = letters.count(b" a") + (letters[0] == 97) + after_first
                    break
        if letter_pieces < 0:
            marked = (b" " + letters).replace(b" a", b" b")
            letter_pieces = marked.count(b"b") + marked.count(_LETTER_PIECE)
        # Digits are few: their runs are split out and joined again, each padded with two digits, so
        # that it holds as many full threes as ceil(n / 3), its pieces.
        runs = data.translate(_DIGIT_RUNS).split()
        digit_pieces = (_DIGIT_RUN_END.join(runs) + _DIGIT_PAD).count(_DIGIT_PIECE) if runs else 0
        return symbols + letter_pieces + digit_pieces
    return len(_PIECES.findall(text))


def estimate_tokens(text: str) -> int:
    """Estimated BPE tokens in `text`: words split every 8 letters, digits in threes, each symbol one."""
    if not text:
        return 0
    size = len(text)
    if size <= _EXACT_UP_TO:
        return _count(text) or 1
    stride = (size - _WINDOW_CHARS) // (_SAMPLE_WINDOWS - 1)
    sampled = sum(
        _count(text[start : start + _WINDOW_CHARS]) for start in range(0, stride * _SAMPLE_WINDOWS, stride)
    )
    return max(1, round(sampled * size / (_WINDOW_CHARS * _SAMPLE_WINDOWS)))


def kept_tokens(text: str) -> int:
    """`estimate_tokens(text)`, kept per text for the next call that counts it (see `texts_tokens`)."""
    if len(text) > _EXACT_UP_TO:
        return estimate_tokens(text)  # sampled, in less time than hashing the text would take
    tokens = _KEPT.get(text)
    if tokens is None:
        tokens = estimate_tokens(text)
        if len(_KEPT) >= _MAX_KEPT:
            _KEPT.clear()
        _KEPT[text] = tokens
    return tokens


def texts_tokens(texts: list[str]) -> int:
    """`sum(map(estimate_tokens, texts))`, counting the texts joined by newlines.

    No piece spans whitespace, so the pieces of texts joined by newlines are the sum of their pieces.
    Only the texts `estimate_tokens` treats apart are estimated one by one: long ones (sampled) and
    non-ASCII ones (kept off the ASCII fast path of the others). A blank text has no pieces but
    counts 1, as `estimate_tokens` never says 0 for a non-empty text.

    An agent sends its whole history again on every step, so most of its texts were counted on the
    step before: texts of up to `_EXACT_UP_TO` characters keep their estimate, keyed by the text itself
    (an equal text always has an equal estimate), and only the others are counted. A few new ones (the
    latest tool call and its result) are counted one by one and kept; many (a conversation seen for
    the first time) are counted in one pass, as that is cheaper, and not kept.
    """
    if len(texts) == 1:
        return kept_tokens(texts[0])  # nothing to join (a system prompt before the user's turn)
    if max(map(len, texts), default=0) <= _EXACT_UP_TO:
        known = list(map(_KEPT.get, texts))
    else:  # long texts are not kept, and not hashed to be looked up
        known = [_KEPT.get(text) if len(text) <= _EXACT_UP_TO else None for text in texts]
    if None not in known:
        return sum(known)  # type: ignore[arg-type]
    total = sum(filter(None, known))  # the None of each new text left out (and the 0 of "" with them)
    new = [text for text, tokens in zip(texts, known, strict=True) if tokens is None]
    if len(new) > _NEW_COUNTED_ALONE:
        return total + _joined_tokens(new)
    return total + sum(map(kept_tokens, new))


def _joined_tokens(texts: list[str]) -> int:
    """`sum(map(estimate_tokens, texts))`, in one pass over the texts joined by newlines."""
    apart = 0
    if max(map(len, texts), default=0) > _EXACT_UP_TO or not all(map(str.isascii, texts)):
        alone = [text for text in texts if len(text) > _EXACT_UP_TO or not text.isascii()]
        apart = sum(map(estimate_tokens, alone))
        texts = [text for text in texts if len(text) <= _EXACT_UP_TO and text.isascii()]
    return apart + _count("\n".join(texts)) + sum(map(str.isspace, texts))
