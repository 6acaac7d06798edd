"""Numbers, digits and durations as the words a caller should hear.

Text-to-speech reads "1234" as "one thousand two hundred…", which is wrong
for an account number and right for an amount; only the flow knows which it
means.  These functions spell it out.  Each has a ``*_words`` form returning
a list of words (one recorded prompt per word is how classic prompt sets
say numbers) and a text form for :meth:`ivrflows.Call.say`.

English is spelt out here.  For any other language the text form returns
numerals ("1 2 3 4", "42"), which the TTS voice of that language reads in
its own words; the word lists are English only.
"""
from __future__ import annotations

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_KEYS = {"*": "star", "#": "hash", "+": "plus"}


def digit_words(digits: str) -> list[str]:
    """``'12#'`` → ``['one', 'two', 'hash']``; spaces and dashes are skipped."""
    words = []
    for ch in digits:
        if ch.isdigit():
            words.append(_ONES[int(ch)])
        elif ch in _KEYS:
            words.append(_KEYS[ch])
        elif ch not in " -().":
            raise ValueError(f"cannot say {ch!r} in {digits!r} as a digit")
    return words


def number_words(n: int) -> list[str]:
    """``1205`` → ``['one', 'thousand', 'two', 'hundred', 'and', 'five']``
    (British 'and', as a caller in a contact centre expects)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"number_words wants an int, not {n!r}")
    if n < 0:
        return ["minus", *number_words(-n)]
    if n == 0:
        return ["zero"]
    words: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            words += [*_below_thousand(n // value), name]
            n %= value
    if n:
        if words and n < 100:
            words.append("and")
        words += _below_thousand(n)
    return words


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
        if n:
            words.append("and")
    if n >= 20:
        words.append(_TENS[n // 10])
        if n % 10:
            words.append(_ONES[n % 10])
    elif n or not words:
        words.append(_ONES[n])
    return words


def duration_words(seconds: float) -> list[str]:
    """``125`` → ``['two', 'minutes', 'and', 'five', 'seconds']``.

    Rounded to what a caller can use: whole seconds under a minute, whole
    minutes from ten minutes on (nobody waiting 14 minutes cares about the
    seconds)."""
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {seconds}")
    total = round(seconds)
    if total >= 600:
        total = round(seconds / 60) * 60
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "hour"), (minutes, "minute"), (secs, "second")]
    spoken = [number_words(v) + [unit if v == 1 else unit + "s"] for v, unit in parts if v]
    if not spoken:
        return ["zero", "seconds"]
    words: list[str] = []
    for i, part in enumerate(spoken):
        if i == len(spoken) - 1 and i > 0:
            words.append("and")
        words += part
    return words


def digits(value: str, language: str = "en") -> str:
    """Say a string key by key: account numbers, phone numbers, PINs."""
    if not _english(language):
        return " ".join(ch for ch in value if ch not in " -().")
    return " ".join(digit_words(value))


def number(n: int, language: str = "en") -> str:
    """Say an amount or a count as a number."""
    return " ".join(number_words(n)) if _english(language) else str(n)


def duration(seconds: float, language: str = "en") -> str:
    """Say a wait or a length of time."""
    if not _english(language):
        # Numerals with SI-style units are the least bad guess for any voice.
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes} min {secs} s" if minutes else f"{secs} s"
    return " ".join(duration_words(seconds))


def _english(language: str) -> bool:
    return language == "en" or language.startswith(("en-", "en_"))
