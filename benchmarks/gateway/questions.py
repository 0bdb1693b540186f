"""Varied traffic: unique but similar support questions, generated inside wrk's Lua `request()`.

Question number i is read as a mixed-radix number over the *meaning* vocabularies (the verb
varies fastest, then the object, the place in the product, the customer's situation, the goal,
and the product's name slowest), so every i below `capacity()` is a different question in
words, not in a number, and consecutive questions differ in one or two words: a support team's
traffic on one topic, close enough for the cache's nearest-neighbour search to find candidates
(cosine about 0.9) and for its verifier to have to judge them. The opening ("How do I", "Is
there a way to") is wording, not meaning: it is picked by a hash of i and never counted in the
uniqueness. No number appears in a question (the verifier rejects a differing number without
reading the words), and the only capitalised word after the first is the product's name, which
changes slowest (the verifier's guard treats a differing name like a differing number).

There is no greeting: with one ("Hi! How do I share ..." against "Hi! How do I hide ..."),
the verifier in the tree of 2026-12-02 accepted two thirds of the neighbours as the same
question, and a "miss" load would have measured semantic hits (see README.md).

The seed shuffles every vocabulary and moves the hash, so a seed is one deterministic stream.
Run this file to print questions through the same Lua code wrk runs:

    .venv/bin/python benchmarks/gateway/questions.py --count 20 --offset 0
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from math import prod
from pathlib import Path

DEFAULT_SEED = 2026
HASH_MULTIPLIER = 40503  # i * 40503 stays an exact integer in Lua's doubles for i < 2**37
HASH_MODULUS = 65521  # a prime: consecutive questions get unrelated openings

# Meaning, fastest-varying first. Words within one list must not mean the same thing: two
# questions that differ in one slot must be two questions, or the verifier rightly serves one
# for the other and the "miss" load measures hits.
VERBS = (
    "export", "import", "delete", "rename", "share", "archive", "restore", "print",
    "merge", "duplicate", "lock", "hide", "sort", "filter", "schedule", "approve",
    "translate", "transfer", "tag", "search", "encrypt", "unsubscribe from", "pin", "bookmark",
)  # fmt: skip
OBJECTS = (
    "my invoices", "the access tokens", "old support tickets", "our billing address", "the team workspace",
    "my saved reports", "the webhook settings", "a member's permissions", "the audit log",
    "my payment methods", "the shipping labels", "our price list", "the contact list",
    "my order history", "the email templates", "our tax documents", "the product catalog",
    "my calendar events", "the chat transcripts", "our contracts", "the backup files",
    "my notification rules", "the survey results", "our discount codes", "the onboarding checklist",
    "my profile photo", "the usage alerts", "our refund requests", "the custom fields",
    "the sales pipeline", "my browser sessions", "the quarterly forecast",
)  # fmt: skip
PLACES = (
    "in the mobile app", "on the web dashboard", "from the admin console", "with the command line tool",
    "in the desktop client", "from the billing page", "in the browser extension", "from the settings page",
    "in the partner portal", "from the reports tab", "in the shared inbox", "from the help center",
    "on a tablet", "in offline mode", "from the sandbox account", "in the new editor",
    "from the calendar view", "in the kanban board", "from the public status page", "in the spreadsheet view",
)  # fmt: skip
SITUATIONS = (
    "after upgrading to the team plan", "during the free trial", "when my card has expired",
    "after switching to a new phone", "for a former employee", "without admin rights",
    "on a shared account", "before the renewal date", "while travelling abroad", "after a failed payment",
    "when single sign-on is enforced", "for a suspended account", "after merging two accounts",
    "when the sync is stuck", "for a customer in another region", "after changing my email",
    "during a data migration", "when two people edit at once", "after the latest update",
    "for an archived project", "when the page keeps loading", "on a slow connection", "for a guest user",
    "before closing the account", "while on parental leave", "for a nonprofit discount",
    "after a chargeback", "when the invoice shows the wrong currency", "for a reseller account",
    "after a security alert", "during the holiday freeze", "when my manager is away",
)  # fmt: skip
GOALS = (
    "so my accountant can see it", "without losing any data", "for the whole team",
    "before the end of the month", "without contacting support", "so that it shows up in reports",
    "for just one project", "in bulk", "automatically every week", "with a single click",
    "and keep a copy", "without notifying anyone", "for compliance reasons", "as a test first",
    "so customers are not affected", "and undo it later",
)  # fmt: skip
PRODUCTS = ("Atlas", "Beacon", "Cobalt", "Dune", "Ember", "Fjord", "Granite", "Harbor")
MEANING = (VERBS, OBJECTS, PLACES, SITUATIONS, GOALS, PRODUCTS)

# Wording: chosen by a hash of i, so it never makes two questions "different".
OPENINGS = (
    "How do I", "How can I", "What is the best way to", "Is it possible to", "Can you explain how to",
    "What are the steps to", "Is there a way to", "Where do I go to", "Could you show me how to",
    "Can I", "Do you know how to", "Is there a quick way to",
)  # fmt: skip

LUA_GENERATOR = """\
local SEED = {seed}
local MEANING = {{
{meaning}
}}
local OPENINGS = {openings}

-- Question number i: the meaning slots are i's digits in a mixed radix (the first varies
-- fastest); the opening comes from a hash of i.
function question(i)
  local words, rest = {{}}, i
  for s = 1, #MEANING do
    local slot = MEANING[s]
    local digit = rest % #slot
    words[s] = slot[digit + 1]
    rest = (rest - digit) / #slot
  end
  local h = (i * {multiplier} + SEED) % {modulus}
  return OPENINGS[h % #OPENINGS + 1] .. " " .. words[1] .. " " .. words[2] .. " " .. words[3] .. " in "
    .. words[6] .. " " .. words[4] .. ", " .. words[5] .. "?"
end
"""


def capacity() -> int:
    """How many different questions there are: no question repeats below this number."""
    return prod(len(words) for words in MEANING)


def lua_generator(seed: int) -> str:
    """Lua source defining `question(i)` for wrk, the vocabularies shuffled by `seed`."""
    rng = random.Random(seed)
    meaning = []
    for words in MEANING:
        shuffled = list(words)
        rng.shuffle(shuffled)
        meaning.append("  " + _lua_list(shuffled) + ",")
    return LUA_GENERATOR.format(
        seed=seed % HASH_MODULUS,
        meaning="\n".join(meaning),
        openings=_lua_list(OPENINGS),
        multiplier=HASH_MULTIPLIER,
        modulus=HASH_MODULUS,
    )


def _lua_list(words: tuple[str, ...] | list[str]) -> str:
    """A Lua table of strings; the words go verbatim into JSON too, so no quote, backslash or non-ASCII."""
    for word in words:
        if not word.isascii() or any(char in word for char in '"\\') or not word.isprintable():
            raise ValueError(f"not a plain word for Lua and JSON: {word!r}")
    return "{" + ", ".join(f'"{word}"' for word in words) + "}"


def main(argv: list[str] | None = None) -> int:
    """Print questions as wrk generates them (the load script's `dump` mode, which sends nothing)."""
    from load import dump_bodies  # load imports this module

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="questions to print (default %(default)s)")
    parser.add_argument("--offset", type=int, default=0, help="number of the first (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed (default %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sophia-questions-") as folder:
        bodies = dump_bodies(Path(folder) / "dump.lua", args.seed, args.offset, args.count)
    for body in bodies:
        print(json.loads(body)["messages"][-1]["content"])
    print(f"({capacity():,} different questions for seed {args.seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (subprocess.SubprocessError, OSError) as error:
        sys.exit(f"wrk could not run the generator: {error}")
