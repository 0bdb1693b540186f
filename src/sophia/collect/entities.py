"""Companies and people named in news text, found by rules rather than a model (nothing to download).

Precision before recall: a capitalised word is a name only when something around it says what kind.
A company is a capitalised run ending in a corporate suffix ("Tricon Residential", "Acme Holdings
LLC"), a run joined by "&" ("Marcus & Millichap"), a camel-case word ("RealPage", "AvalonBay"), one of
a few known names the rules would get wrong ("Morgan Stanley" looks like a person), or a run that the
sentence marks as an organisation: before a title ("RealPage CEO"), before a deal verb ("Greystar
acquired"), after "from"/"by" in a sentence about a deal ("... from Blackstone") or after a title and
"of"/"at" ("chief executive of Greystar"). A person is two or three name-like words after a title
("CEO Dana Jones"), starting with a known first name ("Maria Lopez"), or before ", CEO of".

Headlines in Title Case capitalise every word, so runs mean nothing there: such sentences yield only
camel-case and known names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["COMPANY_SUFFIXES", "FIRST_NAMES", "Entities", "extract_entities"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True, slots=True)
class Entities:
    """What one text names, each list deduplicated (case-insensitively) in order of first mention."""

    companies: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, list[str]]:
        return {"companies": list(self.companies), "people": list(self.people)}

    @classmethod
    def from_json(cls, data: object) -> Entities:
        if not isinstance(data, dict):
            return cls()
        return cls(
            companies=[str(c) for c in data.get("companies") or []],
            people=[str(p) for p in data.get("people") or []],
        )


#: last words that make a capitalised run a company (compared without a trailing dot)
COMPANY_SUFFIXES = _words(
    """Inc Incorporated LLC LLP LP Ltd Limited Corp Corporation Co Company Companies Group Holdings
    Partners Capital REIT Properties Residential Communities Trust Realty Management Investors Investments
    Advisors Equities Ventures PLC plc AG SA GmbH NV Bancorp Financial Living Homes"""
)

#: names the rules would misread (a first name and a surname, or a run the rules split)
KNOWN_COMPANIES = (
    "Morgan Stanley",
    "Goldman Sachs",
    "Charles Schwab",
    "Freddie Mac",
    "Fannie Mae",
    "Ginnie Mae",
    "Bank of America",
    "Wells Fargo",
    "Berkshire Hathaway",
    "Lincoln Property Company",
    "John Hancock",
    "Cushman & Wakefield",
    "Equity Residential",
    "American Homes 4 Rent",
    "Marcus & Millichap",
)

#: common given names (a few hundred), without those that are also everyday capitalised words at the
#: start of a sentence or a headline (Will, May, June, April, August, Grant, Chase, Hope, Faith, Bill,
#: Mark, Rich, Dawn, Summer, Joy, Art, Sunny, Royal, Major, Gene, Pat, Sterling, Camden, Lincoln)
FIRST_NAMES = _words(
    """
    Aaron Abigail Adam Adrian Adriana Ahmed Aisha Alan Albert Alejandro Alex Alexander Alexandra Alexis
    Ali Alice Alicia Alison Allison Amanda Amber Amy Ana Andrea Andrew Andy Angela Anil Anita Ann Anna
    Anne Anthony Antonio Arjun Arthur Ashley Barbara Ben Benjamin Beth Betty Beverly Bob Bobby Brad
    Bradley Brandon Brenda Brian Brittany Bruce Bryan Caleb Cameron Carl Carla Carlos Carmen Carol
    Caroline Carolyn Catherine Charles Charlie Charlotte Chen Cheryl Chloe Chris Christian Christina
    Christine Christopher Cindy Claire Claudia Colin Connor Craig Cynthia Dan Dana Daniel Danielle Darren
    David Dean Deborah Debra Denise Dennis Derek Diana Diane Diego Donald Donna Doris Dorothy Doug Douglas
    Dylan Ed Eduardo Edward Elena Eli Elizabeth Ella Ellen Emily Emma Eric Erica Erin Ethan Eugene Eva
    Evan Evelyn Fatima Felix Fernando Fiona Frances Francis Francisco Frank Fred Gabriel Gabriela Gary
    Gavin George Gerald Gina Gloria Grace Greg Gregory Hannah Harold Harry Hassan Heather Helen Henry Holly
    Howard Hugo Ian Isabel Isabella Ivan Jack Jackie Jacob Jacqueline James Jamie Jane Janet Janice Jason
    Javier Jay Jean Jeff Jeffrey Jennifer Jenny Jeremy Jerry Jesse Jessica Jill Jim Jimmy Joan Joanne Joe
    Joel John Johnny Jon Jonathan Jordan Jorge Jose Joseph Josh Joshua Joyce Juan Judith Judy Julia Julian
    Julie Justin Karen Kate Katherine Kathleen Kathryn Kathy Katie Keith Kelly Ken Kenneth Kevin Kim
    Kimberly Kyle Larry Laura Lauren Laurie Lawrence Leah Lee Leo Leslie Li Linda Lisa Liu Logan Lori
    Louis Lucas Lucy Luis Luke Lynn Manuel Marcus Margaret Maria Marie Marilyn Mario Marissa Martha Martin
    Mary Matt Matthew Megan Melissa Michael Michelle Miguel Mike Min Mohammed Monica Nancy Naomi Natalie
    Nathan Neil Nicholas Nick Nicole Nina Noah Olivia Omar Oscar Pamela Paola Patricia Patrick Paul Paula
    Pedro Peggy Peter Philip Phillip Priya Rachel Rafael Rahul Raj Ralph Ramon Randy Raymond Rebecca
    Richard Rick Ricardo Rita Rob Robert Roberto Robin Roger Ron Ronald Rosa Rose Roy Ruth Ryan Sabrina
    Sally Sam Samantha Samuel Sandra Sara Sarah Scott Sean Sergio Seth Shannon Sharon Shawn Sheila
    Shirley Simon Sofia Sonia Sophia Stacy Stephanie Stephen Steve Steven Stuart Susan Suzanne Sylvia
    Tamara Tanya Tara Teresa Terry Theodore Theresa Thomas Tiffany Tim Timothy Tina Todd Tom Tony Tracy
    Travis Trevor Tyler Valerie Vanessa Venkat Veronica Victor Victoria Vikram Vincent Virginia Walter
    Wang Warren Wayne Wei Wendy William Xavier Yolanda Yusuf Zachary Zoe
    """
)

#: words after which a capitalised run names a person ("CEO Dana Jones"); before one, an organisation
_PERSON_TITLES = _words(
    """CEO CFO COO CTO CIO CMO President president Chairman chairman Chairwoman chairwoman Chair chair
    Founder founder Co-founder co-founder cofounder Director director Principal principal Partner partner
    spokesperson spokesman spokeswoman Spokesperson Spokesman Spokeswoman analyst Analyst economist
    Economist executive Executive officer Officer Mr Ms Mrs Dr Senator Mayor Governor Commissioner Secretary
    head Head manager Manager"""
)
#: titles strong enough that the run before them is an organisation ("RealPage CEO", "Greystar's president")
_ORG_BEFORE = _words(
    """CEO CFO COO CTO CIO CMO President president Chairman chairman Founder founder co-founder
    cofounder spokesperson spokesman spokeswoman Spokesperson Spokesman Spokeswoman chief Chief
    executives"""
)
#: verbs that make the run before them a company ("Greystar acquired"); "said" is not one (people say)
_DEAL_VERBS = _words(
    """acquired acquires bought buys sold sells purchased purchases agreed agrees announced announces
    closed closes completed completes raised raises launched launches merged merges hired hires appointed
    appoints signed signs secured secures partnered filed invested invests"""
)
_DEAL_STEMS = (
    "acqui",
    "bought",
    "buy",
    "sold",
    "sell",
    "purchas",
    "merg",
    "invest",
    "financ",
    "lend",
    "lent",
)
#: capitalised words that start sentences or name dates and places of speech, never a name's first word
_NOT_NAMES = _words(
    """The A An In On At After Before Since Until During For From With By Under Over About Across Yesterday
    Today Tomorrow Meanwhile But And Or Also Last This That These Those When While As If It Its Their They
    We Our He She His Her I You Not No New Some Many Most More Several Other Another Both Each Every All
    According Despite Although Because Following Including Earlier Later Still Even Such Here There What
    Which Who How Why Where Separately Overall Nationally Locally Monday Tuesday Wednesday Thursday Friday
    Saturday Sunday January February March April May June July August September October November December
    Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Q1 Q2 Q3 Q4 US U.S UK EU USA NYSE Nasdaq SEC Fed
    Federal Congress Senate House Treasury HUD FHFA GDP CPI Street Avenue Road North South East West
    Northern Southern Eastern Western Texas California Florida York City County State Sun Belt Midwest
    Chief Vice Senior Executive Managing General Global National International American PhD MBA
    Operations Acquisitions Research Development Sales Marketing Finance Strategy Technology Leasing Policy
    Communications Investor Relations Capital Markets Asset Austin Dallas Houston Phoenix Atlanta Denver
    Seattle Boston Chicago Miami Nashville Orlando Tampa Portland Raleigh Philadelphia Washington Detroit
    Minneapolis Sacramento Columbus Indianapolis Jacksonville Los San Las Fort Salt"""
)
#: words that make no company of a suffixed run on their own ("Real Estate Partners", "Asset Management")
_GENERIC = _words(
    """Asset Property Real Estate Capital Investment Investments Management Residential Commercial
    Multifamily Apartment Apartments Housing Home Homes Financial Private Equity Global National American
    Senior Student Living Rental Rentals Income Industrial Office Retail Healthcare Holdings Group"""
)
#: titles after which "of X" / "at X" names an organisation ("chief executive of Greystar")
_TITLE_OF = _words(
    """CEO CFO COO CTO CIO CMO executive officer president President founder Founder co-founder cofounder
    chairman Chairman chairwoman economist analyst partner principal"""
)
#: words a Title Case headline may leave in lower case
_SMALL_WORDS = _words(
    "from with into over after amid upon onto than that about under between through against during"
)
_CAMEL = re.compile(
    r"^(?!Mc|Mac|De|La|Le|Di|Van|Von|O')[A-Z][a-z]+[A-Z][A-Za-z]*$|^[A-Z][a-z]+[A-Z]{2,}[a-z]*$"
)
_TOKEN = re.compile(r"[A-Za-z0-9][\w'\u2019\-]*[A-Za-z0-9]|[A-Za-z0-9]|&|[.,;:!?()\"\u201c\u201d]")
_INITIAL = re.compile(r"^[A-Z]\.?$")
_POSSESSIVE = re.compile(r"['\u2019]s$")
_ABBREVIATIONS = frozenset({"Inc", "Corp", "Co", "Ltd", "Mr", "Ms", "Mrs", "Dr", "Jr", "Sr", "St", "Rep"})


@dataclass(slots=True)
class _Token:
    text: str
    possessive: bool = False

    @property
    def capitalised(self) -> bool:
        return self.text[:1].isupper()

    @property
    def name_like(self) -> bool:
        """A word that may be part of a name: capitalised, letters (and ' or -), not a stop word."""
        word = self.text
        return (
            word[:1].isupper()
            and word.replace("'", "").replace("\u2019", "").replace("-", "").isalpha()
            and word not in _NOT_NAMES
            and word not in _PERSON_TITLES
            and word not in COMPANY_SUFFIXES
        )


def extract_entities(text: str) -> Entities:
    """The companies and people ``text`` names (see the module's rules), each once."""
    known = [name for name in KNOWN_COMPANIES if re.search(rf"(?<![\w&]){re.escape(name)}(?![\w&])", text)]
    companies: list[str] = list(known)
    people: list[str] = []
    for sentence in _sentences(text):
        _scan(sentence, known, companies, people)
    # a person's surname alone later on ("Jones announced") is the person, not a company
    names = {p.lower() for p in people} | {p.split()[-1].lower() for p in people}
    companies = [c for c in companies if c.lower() not in names]
    companies.sort(key=lambda name: text.find(name))  # in order of mention (known names were found first)
    return Entities(companies=_unique(companies), people=_unique(people))


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        key = name.lower()
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


def _sentences(text: str) -> list[list[_Token]]:
    """Tokens split into sentences at . ! ? (not after an abbreviation or an initial)."""
    sentences: list[list[_Token]] = []
    current: list[_Token] = []
    for match in _TOKEN.finditer(text):
        word = match.group()
        if word in ".!?":
            previous = current[-1].text if current else ""
            if word == "." and len(previous) == 1 and previous.isupper():
                current[-1].text += "."  # a middle initial, "J.", ends no sentence
                continue
            if word == "." and previous in _ABBREVIATIONS:
                continue  # nor does "Inc." or "Mr."
            if current:
                sentences.append(current)
            current = []
            continue
        if _POSSESSIVE.search(word):
            current.append(_Token(word[:-2], possessive=True))
        else:
            current.append(_Token(word))
    if current:
        sentences.append(current)
    return sentences


def _title_case(tokens: list[_Token]) -> bool:
    """A headline in Title Case: (nearly) every longer word but prepositions is capitalised."""
    words = [
        t.text for t in tokens[1:] if len(t.text) >= 4 and t.text.isalpha() and t.text not in _SMALL_WORDS
    ]
    return len(words) >= 3 and sum(not w[:1].isupper() for w in words) <= 0.15 * len(words)


def _runs(tokens: list[_Token]) -> list[tuple[int, int]]:
    """Spans [start, end) of capitalised runs (joined by "&"), split at titles and possessives."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        if not _in_run(tokens[i]):
            i += 1
            continue
        start = i
        while i < len(tokens):
            token = tokens[i]
            if _in_run(token):
                i += 1
                if token.possessive:
                    break
            elif token.text == "&" and i + 1 < len(tokens) and _in_run(tokens[i + 1]) and i > start:
                i += 1
            else:
                break
        end = i
        while start < end and (tokens[start].text in _NOT_NAMES or tokens[start].text.endswith("-based")):
            start += 1  # "In", "Austin-based" and the like open no name
        if start < end:
            spans.append((start, end))
    return spans


def _in_run(token: _Token) -> bool:
    return token.capitalised and token.text not in _PERSON_TITLES and token.text not in {"Chief", "Vice"}


def _scan(tokens: list[_Token], known: list[str], companies: list[str], people: list[str]) -> None:
    if _title_case(tokens):
        companies.extend(t.text for t in tokens if _camel(t.text))
        return
    lowered = [t.text.lower() for t in tokens]
    for start, end in _runs(tokens):
        run = tokens[start:end]
        name = " ".join(t.text for t in run)
        if any(name in k for k in known):
            continue  # "Bank" and "America" of "Bank of America", found already
        before = tokens[start - 1].text if start > 0 else ""
        after = tokens[end].text if end < len(tokens) else ""
        after2 = tokens[end + 1].text if end + 1 < len(tokens) else ""
        if _suffixed(run):
            companies.append(name)
        elif _person(run, before, after, after2):
            people.append(name)
        elif (len(run) == 1 and _camel(name)) or (
            all(t.name_like or _acronym(t.text) for t in run)
            and _marked_as_company(tokens, lowered, start, end)
        ):
            companies.append(name)


def _marked_as_company(tokens: list[_Token], lowered: list[str], start: int, end: int) -> bool:
    """Whether the words around tokens[start:end] make it an organisation: a title after it, a deal verb
    after it, "from"/"by" before it in a sentence about a deal, or a title and "of"/"at" before it."""
    before = lowered[start - 1] if start > 0 else ""
    after = tokens[end].text if end < len(tokens) else ""
    return (
        after in _ORG_BEFORE
        or (after in _DEAL_VERBS and not tokens[end - 1].possessive)
        or (before in {"from", "by"} and any(w.startswith(_DEAL_STEMS) for w in lowered[:start]))
        or (before in {"of", "at"} and start > 1 and tokens[start - 2].text in _TITLE_OF)
    )


def _suffixed(run: list[_Token]) -> bool:
    """A run ending in a corporate suffix after a distinctive word ("Greystar Real Estate Partners", not
    "Real Estate Partners"), or joined by "&" ("Marcus & Millichap")."""
    words = [t.text.rstrip(".") for t in run]
    if "&" in words:
        return len(words) >= 3 and words[0] != "&" and words[-1] != "&"
    if len(words) < 2 or words[-1] not in COMPANY_SUFFIXES:
        return False
    return any(w not in _GENERIC and w not in COMPANY_SUFFIXES and w not in _NOT_NAMES for w in words[:-1])


def _camel(word: str) -> bool:
    return bool(_CAMEL.match(word)) and word not in _NOT_NAMES and word not in COMPANY_SUFFIXES


def _acronym(word: str) -> bool:
    return 2 <= len(word) <= 6 and word.isupper() and word.isalpha() and word not in _NOT_NAMES


def _person(run: list[_Token], before: str, after: str, after2: str) -> bool:
    """Two or three name-like words (a middle initial allowed) that a title, a first name or ", CEO"
    marks as a person."""
    if not 2 <= len(run) <= 3:
        return False
    middle_ok = all(t.name_like or _INITIAL.match(t.text) for t in run[1:-1])
    if not (run[0].name_like and run[-1].name_like and middle_ok) or any(t.possessive for t in run[:-1]):
        return False
    return (
        before in _PERSON_TITLES
        or run[0].text in FIRST_NAMES
        or (after == "," and (after2 in _PERSON_TITLES or after2 in {"chief", "Chief", "vice", "Vice"}))
    )
