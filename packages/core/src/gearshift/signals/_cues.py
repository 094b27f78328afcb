"""The signals' vocabulary: the cue words and phrases, and the structure markers, and how they are found.

Policies route on what a prompt asks for; this module holds the words that say it ("prove",
"refactor", "step by step", "in json") and the marks that show it (code fences, stack traces, diffs,
LaTeX), grouped by what they are cues for. `cue_counts` finds the words with one set intersection over
the ASCII-folded instruction, and `marker_counts` the structure with one regex whose alternatives start
on rare characters: a regex of many word alternatives costs about 100 microseconds per 2,000
characters on a small machine, too much for a decision made before every call. `_signals` turns the
counts into features.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["TASK_CUES", "cue_counts", "marker_counts"]

# Folds ASCII to lowercase and every ASCII punctuation or whitespace byte to a space, so that word
# tests are set lookups, phrase tests are substring tests on b" two words ", and "step-by-step"
# reads as "step by step".
_FOLD = bytes(
    32 if chr(b) in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ \t\n\r\x0b\x0c" else b + 32 if 65 <= b <= 90 else b
    for b in range(256)
)

# --- Cue words and phrases, read from the instruction --------------------------------------------------
# One set intersection finds every cue word; a phrase is only looked for when its key word is there.
_CUES: dict[str, str] = {
    "code": "python javascript typescript java rust golang kotlin swift ruby php sql regex bash shell "
    "powershell html css react django flask docker kubernetes git repo repository api endpoint sdk "
    "function functions method class variable loop array bug bugs debug debugging compile compiler "
    "refactor algorithm recursion recursive implement implementation script code coding program "
    "programming segfault exception unittest pytest npm pip",
    "code_noun": "function method class script program code query regex test tests api endpoint",
    "code_verb": "write implement create fix debug refactor optimize port",
    "math": "solve equation equations integral derivative differentiate integrate probability theorem "
    "lemma prime primes polynomial matrix matrices eigenvalue eigenvalues logarithm factorial modulo "
    "divisible calculate compute percent percentage average ratio remainder irrational rational "
    "integer integers geometry triangle circle radius area volume perimeter sum product mean median "
    "variance combinatorics permutation permutations combinations fraction fractions arithmetic "
    "algebra calculus vector vectors sqrt inequality proportion",
    # Spelled-out quantities only count inside a word problem ("she eats three for breakfast").
    "quantity": "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty "
    "forty fifty hundred thousand million dozen twice half double triple",
    "proof": "prove proof derive justify rigorous rigorously formally counterexample",
    "analysis": "why compare comparison contrast analyze analyse analysis evaluate assess tradeoff "
    "tradeoffs critique design architecture optimize optimise optimal strategy implications "
    "consequences argue diagnose recommend reasoning",
    "constraint": "must ensure exactly constraint constraints requirement requirements assume",
    "summarize": "summarize summarise summary summarization tldr recap condense gist",
    "translate": "translate translation translating translated",
    "extraction": "extract extraction",
    "classification": "classify classification categorize categorise label sentiment spam",
    "creative": "poem story haiku limerick song lyrics fiction sonnet screenplay slogan joke creative tale",
}
_CUE_PHRASES: dict[str, tuple[str, ...]] = {
    "word_problem": ("how many", "how much", "how long", "how far", "what is the total", "in total"),
    "proof": (
        "step by step",
        "show that",
        "think carefully",
        "think through",
        "reason about",
        "from first principles",
        "counter example",
    ),
    "analysis": (
        "trade off",
        "trade offs",
        "pros and cons",
        "root cause",
        "what if",
        "edge case",
        "edge cases",
        "in depth",
    ),
    "constraint": (
        "at most",
        "at least",
        "no more than",
        "without using",
        "do not",
        "don t",
        "should not",
        "given that",
        "subject to",
        "only use",
    ),
    "summarize": ("sum up", "key points", "tl dr"),
    "extraction": ("pull out", "list all", "find all", "named entities", "fill in the"),
    "classification": ("which category", "positive or negative"),
    "json": (
        "in json",
        "as json",
        "json object",
        "json only",
        "only json",
        "valid json",
        "json format",
        "json schema",
        "return json",
        "output json",
        "with json",
    ),
}


# Too common to key a phrase on.
_COMMON_WORDS = "a an and as at by do don for from how in is no not of on only or should t than that the to"
_COMMON_WORDS += " what which with"


_CueEntry = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


def _cue_index() -> dict[bytes, _CueEntry]:
    """Each key word: the groups it is a cue for directly, and (group, phrase) pairs that need the phrase."""
    direct: dict[bytes, tuple[str, ...]] = {}
    phrases: dict[bytes, tuple[tuple[str, str], ...]] = {}
    for group, text in _CUES.items():
        for word in text.split():
            direct[word.encode()] = (*direct.get(word.encode(), ()), group)
    common = _COMMON_WORDS.split()
    for group, items in _CUE_PHRASES.items():
        for item in items:
            # Keyed by its least common word, so that "in", "at" or "how" in a prompt do not each
            # set off substring tests.
            key = next((w for w in item.split() if w not in common), item.split()[0]).encode()
            phrases[key] = (*phrases.get(key, ()), (group, f" {item} "))
    return {word: (direct.get(word, ()), phrases.get(word, ())) for word in {*direct, *phrases}}


_CUE_INDEX = _cue_index()
_CUE_KEYS = frozenset(_CUE_INDEX)
TASK_CUES = ("summarize", "translate", "extraction", "classification", "creative")

# --- Structure markers ----------------------------------------------------------------------------------
# Literal markers by kind; one regex finds them all in a single pass over the prompt.
_MARKER_KINDS: dict[str, tuple[str, ...]] = {
    # Markers start with a symbol, a newline or a capital where they can: the regex engine only stops
    # at characters that start some marker, and lowercase letters would stop it everywhere in prose.
    "fence": ("```", "~~~"),
    "trace": (
        "Traceback (most recent call last)",
        "Error: ",
        "Exception: ",
        "Exception in thread",
        "Segmentation fault",
        "ERR!",
        "RUST_BACKTRACE",
    ),
    "diff": ("diff --git", "\n@@ ", "\n+++ "),
    "syntax": (
        "\ndef ",
        "\nimport ",
        "\nfrom ",
        "\nclass ",
        "#include",
        "(self",
        "=>",
        "</",
        "::",
        ");",
        "){",
        ") {",
        "==",
        "!=",
        "&&",
        "||",
    ),
    "latex": (
        "\\frac",
        "\\sqrt",
        "\\int",
        "\\sum",
        "\\prod",
        "\\lim",
        "\\begin{",
        "\\mathbb",
        "\\cdot",
        "\\times",
        "\\leq",
        "\\geq",
        "\\infty",
        "\\partial",
        "\\pi",
        "\\theta",
        "\\alpha",
        "\\binom",
        "\\(",
    ),
}
_MARKER_KIND = {marker: kind for kind, markers in _MARKER_KINDS.items() for marker in markers}


def _markers_pattern(markers: Iterable[str]) -> str:
    """One alternative per first character (`\\(?:frac|sqrt|...)`), each listing its markers longest first.

    Longest first because the first alternative that matches wins, so no marker may follow one of its
    prefixes. Grouping by first character finds the same matches (markers with different first
    characters never match at the same place) and spares the engine a test per marker wherever one of
    those characters occurs, which in code is often: a third less time than one flat alternation.
    """
    by_first: dict[str, list[str]] = {}
    for marker in sorted(markers, key=len, reverse=True):
        by_first.setdefault(marker[0], []).append(re.escape(marker[1:]))
    return "|".join(f"{re.escape(first)}(?:{'|'.join(rests)})" for first, rests in by_first.items())


_MARKERS = re.compile(_markers_pattern(_MARKER_KIND))


def cue_counts(text: str) -> dict[str, int]:
    """How many cue words and phrases of each group `text` contains (each counted once)."""
    folded = b" " + text.encode().translate(_FOLD) + b" "
    # Phrases are searched in a str view (latin-1 keeps every byte as one character): `in` on bytes
    # first tries its operand as an int and clears the TypeError, which costs more than the search.
    folded_text = folded.decode("latin-1")
    counts: dict[str, int] = {}
    for word in _CUE_KEYS.intersection(folded.split()):
        groups, phrases = _CUE_INDEX[word]
        for group in groups:
            counts[group] = counts.get(group, 0) + 1
        for group, phrase in phrases:
            if phrase in folded_text:
                counts[group] = counts.get(group, 0) + 1
    return counts


def marker_counts(prompt: str) -> dict[str, int]:
    """How many distinct markers of each kind (fence, trace, diff, syntax, latex) `prompt` holds."""
    kinds: dict[str, int] = {}
    for marker in set(_MARKERS.findall(prompt)):
        kind = _MARKER_KIND[marker]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds
