"""Pair interactions as the store keeps them (WordNet verb synsets, BenSMOT's labels: ``approach.v.01``)
and as answers say them (words a model can say: ``approaches``).

Builders render :func:`words_of` the store's synset; evaluation reads a model's words back with
:func:`synset_of`. Synsets named in :data:`WORDS` map both ways exactly; any other verb synset
``lemma.v.NN`` reads as its lemma in the third person (``look_at.v.01`` -> ``looks at``), read back as
sense 01. Text that is not a synset is said as it is, and read back as a synset when it looks like one
said in words.
"""

from __future__ import annotations

import re

# The synthetic world's interactions (and their senses that are not 01) with the words answers use.
WORDS: dict[str, str] = {
    "accompany.v.02": "walks with",
    "pass.v.01": "passes",
    "approach.v.01": "approaches",
}
SYNSETS: dict[str, str] = {words: synset for synset, words in WORDS.items()}
_SYNSET = re.compile(r"^([a-z][a-z_'-]*)\.v\.([0-9]{2})$")
_ES_ENDINGS = ("s", "sh", "ch", "x", "z", "o")


def _third_person(verb: str) -> str:
    if verb.endswith("y") and len(verb) > 1 and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + ("es" if verb.endswith(_ES_ENDINGS) else "s")


def _base_form(verb: str) -> str:
    if verb.endswith("ies"):
        return verb[:-3] + "y"
    if verb.endswith("es") and verb[:-2].endswith(_ES_ENDINGS) and not verb[:-2].endswith("s"):
        return verb[:-2]
    if verb.endswith("sses"):
        return verb[:-2]
    return verb[:-1] if verb.endswith("s") and not verb.endswith("ss") else verb


def words_of(label: str) -> str:
    """How an answer says the interaction ``label`` (a synset from the store)."""
    label = label.strip()
    if label in WORDS:
        return WORDS[label]
    match = _SYNSET.match(label)
    if match is None:
        return label
    first, *rest = match.group(1).split("_")
    return " ".join([_third_person(first), *rest])


def synset_of(words: str) -> str:
    """The synset an answer's ``words`` say (inverse of :func:`words_of`); a synset is kept as it is."""
    text = " ".join(words.strip().lower().split())
    if text in SYNSETS:
        return SYNSETS[text]
    if _SYNSET.match(text) or not re.fullmatch(r"[a-z][a-z' -]*", text):
        return words.strip()
    first, *rest = text.split(" ")
    return "_".join([_base_form(first), *rest]) + ".v.01"
