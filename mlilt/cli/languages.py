"""``mlilt languages``: the languages mlilt knows, filtered (:mod:`mlilt.languages`)."""

from __future__ import annotations

import argparse
import json

from mlilt.languages import RESOURCE_LEVELS, filter_languages, format_table, list_languages


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "List the languages in languages/*.yaml with their encoders' coverage, resource level, Emoji-CLDR caption "
        "count and translation model."
    )
    p.add_argument("--script", help="only this ISO 15924 script, e.g. Latn, Ethi, Arab")
    p.add_argument("--resource", choices=RESOURCE_LEVELS, help="only this resource level")
    p.add_argument(
        "--xlmr",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only languages in (--xlmr) or not in (--no-xlmr) XLM-R's pretraining data",
    )
    p.add_argument("--min-names", type=int, default=0, metavar="N", help="only languages with >= N Emoji-CLDR names")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    chosen = filter_languages(list_languages(), args.script, args.resource, args.xlmr, args.min_names)
    if args.json:
        print(json.dumps([lang.to_dict() for lang in chosen], ensure_ascii=False, indent=1))
    else:
        print(format_table(chosen))
        print(f"{len(chosen)} language(s)")
    return 0
