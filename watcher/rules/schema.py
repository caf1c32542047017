"""The YAML rule schema, documented here; its model, loader and checker live in sibling modules.

A rule file holds one rule, or several separated by ``---`` lines. The smallest useful rule::

    actors: [Nicolás Maduro]

A fuller one (every key is optional except that a rule needs actors, keywords or a regex)::

    name: ukraine-peace                # default: the file name without .yaml
    description: Ukraine–Russia peace talks
    priority: critical                 # critical | normal (default) | low
    destinations: [telegram:-1001234567890/42, email:desk@example.org, console]
    filters:
      feeds: [Reuters World, tag:europe]   # feed names, or tag:NAME
      languages: [en, es]
      max_age: 2d
      categories: [World, Europe]      # the feed item's own categories/tags
      authors: [Reuters Staff]         # part of the author's name
      url: '/(world|europe)/'          # google-re2, searched in the article URL
    actors:                            # canonical name: aliases, or a mapping
      Ukraine: [Ukrainian, Kyiv, Ucrania]
      Vladimir Putin:
        aliases: [Putin]
        types: [PERSON]                # named-entity labels a mention must carry
        exclude: [Putin Street]        # a mention inside one of these phrases is not the actor
        not_near: [restaurant]         # nor one in a sentence that has one of these
        weight: 2                      # each mention adds this to the score (default 1)
    keywords:                          # group name: phrases (matched on lemmas)
      talks:
        en: [peace talks, ceasefire]
        es: [conversaciones de paz, alto el fuego]
        not_near: [minerals deal]      # not in a sentence with these (also: exclude)
      war: [war, invasion]             # a plain list applies to every language
    regex:                             # google-re2 syntax; add (?i) to ignore case
      summit: '(?i)summit in (Riyadh|Istanbul)'
    match:                             # default: any term above
      all:
        - near: [Ukraine, talks]       # in one sentence, or `within: 10` words
        - any: [Vladimir Putin, {term: war, min: 2, in: text}]
      none: [summit]
    scope: [title, text]
    min_mentions: 3                    # mentions of the rule's terms, in all
    threshold: 5                       # score needed to alert (default 1)
    title_weight: 2                    # a mention in the title counts this many times

Actor names match case- and accent-insensitively, whole words only ("Maduro's" counts,
"Maduros" does not); aliases written in capitals, such as ``US``, match only in capitals.
The short ``keywords:`` form ``{en: [...], es: [...]}`` (only language codes as keys) is one
group named ``keywords``; a plain list is one group for every language. A list under
``match:`` means ``all``. The score adds each mention's weight (times ``title_weight`` in
the title), over every term not used only under ``none``. An actor's ``ambiguous`` names
count only when corroborated (``corroborate`` terms nearby, the full name, NER); ``about:``
(``topic``, ``min_score``, ``weights``, ``require``, ``lead``) asks that the article be about
the topic; ``window`` sets how many sentences apart counts as together. Several phrases are
a list, ``[a, b]``: an unquoted text with ", " where a list goes is refused (quote a phrase
that holds a comma). Only the folder's own ``.yaml``/``.yml`` files are read; ``check``
names one in a subfolder or with an uppercase suffix. docs/rules.md has the details.
"""

from __future__ import annotations

from watcher.rules.loader import MAX_FILE_BYTES, load_rule_file, load_rules, parse_rules
from watcher.rules.model import (
    ENTITY_TYPES,
    FIELDS,
    PRIORITIES,
    SHORT_FORM_LANGUAGES,
    Actor,
    AllOf,
    AnyOf,
    Filters,
    Keywords,
    Mentions,
    Near,
    Node,
    NoneOf,
    Pattern,
    Priority,
    Rule,
    RuleSet,
    Term,
)
from watcher.rules.regex import compile_regex, regex_problem
from watcher.types import Field

__all__ = [
    "ENTITY_TYPES", "FIELDS", "MAX_FILE_BYTES", "PRIORITIES", "SHORT_FORM_LANGUAGES", "Actor",
    "AllOf", "AnyOf", "Field", "Filters", "Keywords", "Mentions", "Near", "Node", "NoneOf",
    "Pattern", "Priority", "Rule", "RuleSet", "Term", "compile_regex", "load_rule_file",
    "load_rules", "parse_rules", "regex_problem",
]  # fmt: skip
