"""Segment names that follow from the numbers, and the figures that justify every word.

A name is assembled from *level words*, each speaking of one quantity of the profile
(`segmentlab.segmentation.profiles.profile_segments`), plus qualifiers for what else sets a
segment apart (country, returns, product categories). Noise (-1) is always "unassigned" and is
not one of the segments the rules compare.

Level words (``WORDS``)
-----------------------
A level word holds for a segment when its median sits at the word's end of **both**
populations: among all labelled customers (population percentile of the median at least
``HIGH`` for a high word, at most ``LOW`` for a low word) and among the segments (its rank by
median, ties sharing the better rank, is in the extreme half: rank <= n_segments / 2).
"one-off" is a fact instead: the median customer of the segment ordered once. Both tests are
monotone in the median, so the segments a word holds for always have a more extreme median than
every segment it does not hold for; a word is then used for all of them or, where a word is
vetoed, only for those beyond the most extreme vetoed segment (strictly), which keeps that order.
"new" (shortest tenure) is vetoed for lapsed segments (their first and only purchases are old,
not new) and "recent" for new ones (new already says it).

==================  ===================  =====================================  ===========
word                quantity             end                                    in the name
==================  ===================  =====================================  ===========
lapsed / recent     recency_days         high / low                             always
new                 tenure_days          low                                    always
frequent / one-off  frequency            high / median of 1 order               always
high / low spenders monetary             high / low                             always
large/small baskets basket_value         high / low                             see below
in bulk / few units units_per_invoice    high / low                             see below
==================  ===================  =====================================  ===========

The first four words form the core ("lapsed one-off low spenders", "frequent buyers"). A
basket or units word is added when the segment has fewer than ``MAX_CORE`` core words and
differs from all customers more on it than on any core word it has (distance of the percentile
from 1/2), and then to every segment more extreme on it (so its order still holds).

Qualifiers in brackets: the countries, when at most half as large a share of the segment lives
in the home country (the most common one) as of all customers (``COUNTRY_RATIO``): the one or
two most common other countries when they hold half the segment, else "outside <home>"; "high
returns", when the mean return rate is at least ``RETURN_LIFT`` times the population's and at
least ``RETURN_FLOOR``; "mostly <category>", when a product-category share (extra profile
columns ``*__cat_*``) is at least ``CATEGORY_LIFT`` times its population mean and at least
``CATEGORY_FLOOR``. Segments that would still share a name get the basket or units word that
tells them apart (most extreme first), then their main country, and last "#1", "#2"... by
revenue.

`name_basis` writes, for every word and qualifier, the figures it rests on ("lapsed: median 134
days since last order — highest of 5 segments, 74th percentile of all customers").
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from segmentlab.vocabulary import feature_label

LOW, HIGH = 1 / 3, 2 / 3
RETURN_LIFT, RETURN_FLOOR = 2.0, 0.05
CATEGORY_LIFT, CATEGORY_FLOOR = 2.0, 0.25
COUNTRY_RATIO = 0.5
MAX_CORE = 3  # a segment with this many core words gets no basket or units word by choice
NOISE_LABEL, NOISE_NAME = -1, "unassigned"


@dataclass(frozen=True)
class Word:
    """A level word: the profile quantity it speaks of, which end, and where it goes in a name."""

    text: str
    metric: str      # profile column stem: <metric>_median, <metric>_pct
    side: str        # "high" or "low"
    slot: str        # "recency", "tenure", "frequency", "noun" or "detail"
    unit: str        # how the median reads: "{} days since last order"

    @property
    def key(self) -> str:
        return f"{self.metric}:{self.side}"


WORDS: tuple[Word, ...] = (
    Word("lapsed", "recency_days", "high", "recency", "{} days since last order"),
    Word("recent", "recency_days", "low", "recency", "{} days since last order"),
    Word("new", "tenure_days", "low", "tenure", "{} days since first order"),
    Word("frequent", "frequency", "high", "frequency", "{} orders"),
    Word("one-off", "frequency", "low", "frequency", "{} order"),
    Word("high spenders", "monetary", "high", "noun", "total spend {}"),
    Word("low spenders", "monetary", "low", "noun", "total spend {}"),
    Word("with large baskets", "basket_value", "high", "detail", "order value {}"),
    Word("with small baskets", "basket_value", "low", "detail", "order value {}"),
    Word("buying in bulk", "units_per_invoice", "high", "detail", "{} units per order"),
    Word("buying few units", "units_per_invoice", "low", "detail", "{} units per order"),
)
_BY_TEXT = {w.text: w for w in WORDS}
#: word -> words it cannot stand beside in one name (the vetoed word gives way)
_VETOES = {"new": ("lapsed",), "recent": ("new",)}
_RESOLVE = ("new", "recent")  # vetoed words, each after the words that veto it
_ORDER = ("recency", "tenure", "frequency", "noun", "detail")


def name_segments(profile: pd.DataFrame) -> pd.Series:
    """Unique descriptive name per segment from the rules in the module docstring.

    Parameters
    ----------
    profile : DataFrame
        Output of ``profile_segments`` (index ``segment``).

    Returns
    -------
    Series
        Name per segment label, indexed like ``profile``.
    """
    words, qualifiers = segment_words(profile)
    return pd.Series({s: _compose(words.get(s, []), qualifiers.get(s, []), s)
                      for s in profile.index}, dtype=object).rename("name")


def name_basis(profile: pd.DataFrame) -> pd.Series:
    """The figures behind every word of every name, one line per word (newline-separated)."""
    words, qualifiers = segment_words(profile)
    numbers = _numbers(profile)
    lines = {}
    for s in profile.index:
        rows = [f"{w}: {_word_figures(numbers, _BY_TEXT[w], s)}" for w in words.get(s, [])]
        rows += [f"{text}: {figures}" for _, text, figures in qualifiers.get(s, [])]
        lines[s] = "\n".join(rows)
    return pd.Series(lines, dtype=object).rename("name_basis")


def segment_words(profile: pd.DataFrame) -> tuple[dict, dict]:
    """The level words by segment, in name order, and the qualifiers ``(kind, text, figures)``.

    Kinds: ``country`` (customers mostly outside the home country), ``returns``, ``category``,
    ``main country`` and ``rank`` (added only to tell apart segments that would share a name).
    """
    numbers = _numbers(profile)
    segments = numbers.index
    eligible = {w.text: _eligible(numbers, w) for w in WORDS}
    held = {}
    # A vetoed word is resolved after the words that veto it.
    for w in sorted(WORDS, key=lambda w: _RESOLVE.index(w.text) if w.text in _RESOLVE else -1):
        vetoed = [s for s in eligible[w.text]
                  if any(s in held.get(v, ()) for v in _VETOES.get(w.text, ()))]
        held[w.text] = _before(numbers, w, eligible[w.text], vetoed)
    core = {s: [w for w in WORDS if w.slot != "detail" and s in held[w.text]] for s in segments}
    chosen = {w.text: set() for w in WORDS if w.slot == "detail"}
    for s in segments:
        detail = _most_distinct(numbers, s, [w for w in WORDS if w.slot == "detail"
                                             and s in held[w.text]])
        if detail is not None and len(core[s]) < MAX_CORE and _distance(numbers, s, detail) > max(
                (_distance(numbers, s, w) for w in core[s]), default=0.0):
            chosen[detail.text].add(s)
    qualifiers = {s: _qualifiers(profile, s) for s in segments}

    def current() -> dict:
        _close(numbers, chosen, held)
        return {s: [w.text for w in core[s]] + [t for t in chosen if s in chosen[t]]
                for s in segments}

    for _ in range(len(WORDS) + 2):  # each pass adds a word or a country, else stops
        clashes = _clashes(current(), qualifiers)
        if not clashes or not _separate(profile, numbers, clashes, held, chosen, qualifiers):
            break
    words = current()
    for group in _clashes(words, qualifiers):
        order = numbers.loc[group, "revenue"].sort_values(ascending=False, kind="stable").index
        for rank, s in enumerate(order, start=1):
            qualifiers[s].append(("rank", f"#{rank}", f"#{rank} by revenue "
                                  f"({numbers.at[s, 'revenue']:,.0f}) of {len(group)} segments "
                                  "the rules cannot tell apart"))
    ordered = {s: sorted(ws, key=lambda t: _ORDER.index(_BY_TEXT[t].slot)) for s, ws in words.items()}
    return ordered, qualifiers


_NUMBERS = sorted({f"{w.metric}_{part}" for w in WORDS for part in ("median", "pct")}) + [
    "revenue", "return_rate_mean", "return_rate_lift"]


def _numbers(profile: pd.DataFrame) -> pd.DataFrame:
    """The figures the rules compare, as floats, for the segments (noise left out)."""
    missing = [c for c in _NUMBERS if c not in profile.columns]
    if missing:
        raise ValueError(f"profile lacks columns {missing}; build it with profile_segments")
    return profile.loc[profile.index != NOISE_LABEL, _NUMBERS].astype(float)


def _median(numbers: pd.DataFrame, word: Word) -> pd.Series:
    return numbers[f"{word.metric}_median"]


def _rank(numbers: pd.DataFrame, word: Word) -> pd.Series:
    """1 = most extreme at the word's end among the segments; ties share the better rank."""
    return _median(numbers, word).rank(method="min", ascending=word.side == "low")


def _eligible(numbers: pd.DataFrame, word: Word) -> list:
    """Segments where the word's population and segment tests both hold."""
    median = _median(numbers, word)
    if word.text == "one-off":
        return list(numbers.index[median <= 1])
    pct = numbers[f"{word.metric}_pct"]
    among = _rank(numbers, word) <= len(numbers) / 2
    at_end = pct >= HIGH if word.side == "high" else pct <= LOW
    return list(numbers.index[at_end & among])


def _before(numbers: pd.DataFrame, word: Word, eligible: list, vetoed: list) -> set:
    """The eligible segments strictly beyond the most extreme vetoed one (all, without vetoes)."""
    if not vetoed:
        return set(eligible)
    median = _median(numbers, word)
    if word.side == "high":
        return {s for s in eligible if median[s] > median[vetoed].max()}
    return {s for s in eligible if median[s] < median[vetoed].min()}


def _distance(numbers: pd.DataFrame, s, word: Word) -> float:
    """How far from the middle of all customers the segment sits on the word's quantity."""
    return abs(float(numbers.at[s, f"{word.metric}_pct"]) - 0.5)


def _most_distinct(numbers: pd.DataFrame, s, words: list[Word]) -> Word | None:
    return max(words, key=lambda w: _distance(numbers, s, w), default=None)


def _close(numbers: pd.DataFrame, chosen: dict, held: dict) -> None:
    """Give a used word to every segment more extreme on its quantity (all of them hold it)."""
    for text, users in chosen.items():
        if users:
            word, median = _BY_TEXT[text], _median(numbers, _BY_TEXT[text])
            edge = median[list(users)].min() if word.side == "high" else median[list(users)].max()
            beyond = median >= edge if word.side == "high" else median <= edge
            users.update(s for s in held[text] if beyond[s])


def _compose(words: list[str], qualifiers: list[tuple[str, str, str]], s) -> str:
    if s == NOISE_LABEL:
        return NOISE_NAME
    core = [w for w in words if _BY_TEXT[w].slot != "detail"]
    if not any(_BY_TEXT[w].slot == "noun" for w in core):
        core.append("buyers")
    name = " ".join(core + [w for w in words if _BY_TEXT[w].slot == "detail"])
    return name + (f" ({', '.join(text for _, text, _ in qualifiers)})" if qualifiers else "")


def _clashes(words: dict, qualifiers: dict) -> list[list]:
    names = pd.Series({s: _compose(words[s], qualifiers[s], s) for s in words}, dtype=object)
    return [list(group.index) for _, group in names.groupby(names) if len(group) > 1]


def _separate(profile: pd.DataFrame, numbers: pd.DataFrame, clashes: list[list], held: dict,
              chosen: dict, qualifiers: dict) -> bool:
    """Add one distinguishing word or country to each clashing group; False when none exists."""
    progress = False
    for group in clashes:
        options = [w for w in WORDS if w.slot == "detail"
                   and 0 < len(set(group) & held[w.text]) < len(group)]
        if options:
            best = max(options, key=lambda w: max(_distance(numbers, s, w) for s in group))
            chosen[best.text].update(set(group) & held[best.text])
            progress = True
        elif "main_country" in profile and profile.loc[group, "main_country"].nunique() == len(group):
            for s in group:
                if not any(t == profile.at[s, "main_country"] for _, t, _ in qualifiers[s]):
                    qualifiers[s].append(("main country", str(profile.at[s, "main_country"]),
                                          _country_figures(profile, s)))
            progress = True
    return progress


def _qualifiers(profile: pd.DataFrame, s) -> list[tuple[str, str, str]]:
    """(kind, text, figures) of the country, returns and category qualifiers that hold."""
    found = []
    row = profile.loc[s]
    if "home_share" in profile and row["home_share"] <= COUNTRY_RATIO * row["home_share_all"]:
        found.append(("country", _abroad(row), _country_figures(profile, s)))
    rate, lift = float(row["return_rate_mean"]), float(row["return_rate_lift"])
    if lift >= RETURN_LIFT and rate >= RETURN_FLOOR:
        found.append(("returns", "high returns", f"{rate:.1%} of spend returned (segment mean) vs "
                      f"{rate / lift:.1%} overall, {lift:.1f}x"))
    for column, share, overall in _categories(profile, s):
        found.append(("category", f"mostly {feature_label(column)}",
                      f"{share:.0%} of spend vs {overall:.0%} overall"))
    return found


_ARTICLE = ("United ", "Netherlands", "Czech ", "Channel ", "European ", "Republic ")


def _abroad(row: pd.Series) -> str:
    """'Germany', 'Germany & France' when they hold half the segment, else 'outside <home>'."""
    names, total = [], 0.0
    for i in (1, 2):
        name, share = row.get(f"other_country_{i}"), row.get(f"other_country_{i}_share")
        if isinstance(name, str) and name and pd.notna(share) and total < 0.5:
            names.append(name)
            total += float(share)
    if names and total >= 0.5:
        return " & ".join(names)
    home = str(row["home_country"])
    return f"outside {'the ' if home.startswith(_ARTICLE) else ''}{home}"


def _country_figures(profile: pd.DataFrame, s) -> str:
    row = profile.loc[s]
    if "home_share" not in row:
        return f"main country of the segment's customers: {row['main_country']}"
    parts = [f"{row[f'other_country_{i}']} {row[f'other_country_{i}_share']:.0%}" for i in (1, 2)
             if isinstance(row.get(f"other_country_{i}"), str) and row.get(f"other_country_{i}")]
    home = (f"{row['home_country']} {row['home_share']:.0%} of this segment's customers vs "
            f"{row['home_share_all']:.0%} of all")
    return home + (f"; {', '.join(parts)}" if parts else "")


def _categories(profile: pd.DataFrame, s) -> list[tuple[str, float, float]]:
    """(column, segment share, population share) of the categories this segment buys mostly."""
    columns = [c for c in profile.columns if "__cat_" in str(c) and f"{c}_all" in profile]
    found = [(c, float(profile.at[s, c]), float(profile.at[s, f"{c}_all"])) for c in columns]
    return [(c, v, a) for c, v, a in found
            if v >= CATEGORY_FLOOR and a > 0 and v >= CATEGORY_LIFT * a][:1]


def _word_figures(numbers: pd.DataFrame, word: Word, s) -> str:
    """'median 134 days since last order — highest of 5 segments, 74th percentile of all customers'."""
    median = float(numbers.at[s, f"{word.metric}_median"])
    value = f"{median:,.0f}" if median >= 100 or median.is_integer() else f"{median:,.1f}"
    rank = int(_rank(numbers, word)[s])
    ties = int((_median(numbers, word) == median).sum())
    end = "highest" if word.side == "high" else "lowest"
    place = ("joint " if ties > 1 else "") + (end if rank == 1 else f"{_ordinal(rank)} {end}")
    text = f"median {word.unit.format(value)} — {place} of {len(numbers)} segments"
    if word.text == "one-off":
        return text + " (at least half of its customers ordered once)"
    pct = float(numbers.at[s, f"{word.metric}_pct"])
    return text + f", {_ordinal(round(100 * pct))} percentile of all customers"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
