"""Guided decoding: at each step only the tokens that keep the answer valid are allowed, so a JSON
answer parses and fits its schema, and a label is one of the task's labels, whatever the weights.

lm-format-enforcer does the parsing (JSON Schema, regex) against the tokenizer's vocabulary; its
own transformers glue imports transformers 4 names, so the vocabulary table it needs is built here
(the same recipe as its `build_token_enforcer_tokenizer_data`). The table is built once per
tokenizer; a parser per request.
"""
from __future__ import annotations

import re
from functools import lru_cache

# A model may pad JSON with whitespace indefinitely; one space between tokens is all JSON needs.
MAX_CONSECUTIVE_WHITESPACE = 1


def tokenizer_data(tokenizer):
    """(token id, text, starts a word) for every regular token: the vocabulary as the enforcer reads it."""
    from lmformatenforcer import TokenEnforcerTokenizerData

    zero = tokenizer.encode("0", add_special_tokens=False)[-1]
    special = set(tokenizer.all_special_ids)
    regular = []
    for token in range(len(tokenizer)):
        if token in special:
            continue
        # Decoding after "0" keeps a leading space that decoding the token alone would drop.
        after_zero = tokenizer.decode([zero, token])[1:]
        regular.append((token, after_zero, len(after_zero) > len(tokenizer.decode([token]))))
    return TokenEnforcerTokenizerData(regular, lambda ids: tokenizer.decode(ids).rstrip("\ufffd"),
                                      tokenizer.eos_token_id, False, len(tokenizer))


def json_parser(schema: dict | None):
    """Any JSON object (schema None), else one that fits `schema`."""
    from lmformatenforcer import JsonSchemaParser

    return JsonSchemaParser(schema or {"type": "object"})


def label_parser(labels: list[str]):
    """Exactly one of `labels`, nothing around it."""
    from lmformatenforcer import RegexParser

    return RegexParser("(" + "|".join(re.escape(label) for label in labels) + ")")


class AllowedTokens:
    """transformers' `prefix_allowed_tokens_fn` for one generation. The enforcer takes the first
    sequence it sees as the prompt and parses only what follows it."""

    def __init__(self, data, parser):
        from lmformatenforcer import TokenEnforcer

        self.enforcer = TokenEnforcer(data, parser)
        # TokenEnforcer replaces the parser's config with its own (for the vocabulary's alphabet),
        # so the whitespace bound is set on that one.
        parser.config.max_consecutive_whitespaces = MAX_CONSECUTIVE_WHITESPACE

    def __call__(self, batch_id: int, sequence) -> list[int]:
        return self.enforcer.get_allowed_tokens(sequence.tolist()).allowed_tokens
