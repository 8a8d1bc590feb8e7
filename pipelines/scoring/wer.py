"""Word error rate of transcripts against the texts they should say (for cloned speech)."""

from __future__ import annotations

import re

from speakembed.pipelines.base.errors import UsageError

_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                 "fifteen sixteen seventeen eighteen nineteen twenty").split()
_TENS_WORDS = dict(zip(range(2, 10), "twenty thirty forty fifty sixty seventy eighty ninety".split()))



def normalize_text(text: str) -> list[str]:
    """Words for scoring: lower case, apostrophes dropped ("don't" -> "dont"), other punctuation
    as spaces, numbers 0-99 spelled out ("7" -> "seven", "42" -> "forty two", "1,000" -> "1000")."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())
    text = re.sub(r"['\u2019]", "", text)
    text = re.sub(r"[^\w\s]|_", " ", text)
    text = re.sub(r"(?<=\d)(?=[^\d\s])|(?<=[^\d\s])(?=\d)", " ", text)  # "7am" -> "7 am"
    return [spelled for word in text.split() for spelled in _spell_number(word).split()]


def _spell_number(word: str) -> str:
    if not word.isascii() or not word.isdigit() or int(word) > 99 or (len(word) > 1 and word[0] == "0"):
        return word
    number = int(word)
    if number < len(_NUMBER_WORDS):
        return _NUMBER_WORDS[number]
    tens, ones = divmod(number, 10)
    return f"{_TENS_WORDS[tens]} {_NUMBER_WORDS[ones]}" if ones else _TENS_WORDS[tens]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two word lists: substitutions + insertions + deletions."""
    previous = list(range(len(hypothesis) + 1))
    for row, ref_word in enumerate(reference, start=1):
        current = [row]
        for column, hyp_word in enumerate(hypothesis, start=1):
            current.append(min(previous[column] + 1, current[column - 1] + 1,
                               previous[column - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate: total word edits / total reference words, after `normalize_text`.

    A ratio (0 is perfect; it can exceed 1 when the hypotheses insert many words). Raises
    UsageError when the lists differ in length or the references hold no word.
    """
    if len(references) != len(hypotheses):
        raise UsageError(f"word_error_rate got {len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(normalize_text(reference), normalize_text(hypothesis))
             for reference, hypothesis in zip(references, hypotheses)]
    words = sum(len(reference) for reference, _ in pairs)
    if words == 0:
        raise UsageError("word_error_rate needs at least one reference word")
    return sum(edit_distance(reference, hypothesis) for reference, hypothesis in pairs) / words
