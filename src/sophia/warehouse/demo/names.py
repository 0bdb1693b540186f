"""Word lists for the demo's names: companies, people, titles. Unique by construction, not by luck."""

from __future__ import annotations

import re

import numpy as np


def words(text: str) -> tuple[str, ...]:
    """A word list written compactly: items separated by '|'."""
    return tuple(item.strip() for item in text.split("|"))


_PREFIXES = words(
    "Maple|Summit|Harbor|Cedar|Granite|Willow|Pinnacle|Riverstone|Oakmont|Bluebird|Ironwood|"
    "Lakeshore|Silverline|Northgate|Sunrise|Redwood|Keystone|Brightwater|Highland|Copperleaf|"
    "Stonebridge|Meridian|Aspen|Crescent|Fairview|Evergreen|Magnolia|Prairie|Beacon|Chestnut|"
    "Westbrook|Juniper|Landmark|Seaside|Timberline|Heritage|Parkside|Golden Gate|Canyon|Liberty|"
    "Foxhall|Sterling|Bayview|Hawthorne|Quarry|Mosaic|Lantern|Arbor|Driftwood|Monarch"
)
_CORES = words(
    "Property|Residential|Living|Apartments|Communities|Housing|Realty|Homes|Rentals|Multifamily|"
    "Estates|Properties|Urban Living|Residences|Lofts|Village"
)
_SUFFIXES = words("Management|Group|Partners|Holdings|LLC|Co.|Trust|Capital|Advisors|Collective|Company|Inc.")
FIRST_NAMES = words(
    "Olivia|Liam|Emma|Noah|Ava|Elijah|Sophia|James|Isabella|Lucas|Mia|Mateo|Amelia|Benjamin|"
    "Harper|Daniel|Evelyn|Henry|Priya|Arjun|Mei|Wei|Fatima|Omar|Sofia|Diego|Chloe|Marcus|Grace|"
    "Andre|Hannah|Kenji|Aaliyah|Jamal|Nora|Samuel|Layla|Gabriel|Zoe|Ethan|Renee|Tomás|Ingrid|"
    "Malik|Rosa|Victor|Dana|Caleb|Yuki|Leah|Owen|Camila|Rahul|Naomi|Isaac|Julia|Desmond|Claire|"
    "Hector|Anika"
)
LAST_NAMES = words(
    "Smith|Johnson|Williams|Brown|Garcia|Miller|Davis|Rodriguez|Martinez|Hernandez|Lopez|Wilson|"
    "Anderson|Thomas|Taylor|Moore|Jackson|Martin|Lee|Thompson|White|Harris|Clark|Lewis|Robinson|"
    "Walker|Young|Allen|King|Wright|Scott|Nguyen|Hill|Flores|Green|Adams|Nelson|Baker|Hall|"
    "Rivera|Campbell|Mitchell|Carter|Roberts|Patel|Kim|Chen|Okafor|Singh|Murphy|Cohen|Dubois|"
    "Tremblay|Gagnon|Novak|Ortiz|Park|Shapiro|Reyes|Bennett"
)
#: contact titles; the first ones decide (is_decision_maker)
DECIDER_TITLES = words(
    "COO|VP of Operations|Chief Executive Officer|VP of Property Management|CFO|"
    "Director of Operations|Owner|VP of Technology"
)
OTHER_TITLES = words(
    "Regional Manager|Director of Leasing|Property Manager|IT Director|Leasing Manager|"
    "Head of Resident Experience|Maintenance Supervisor|Asset Manager|Marketing Manager|"
    "Revenue Manager|Controller"
)
REP_TITLES = ("Account Executive", "Senior Account Executive", "Enterprise Account Executive")


def company_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct company names (prefix + core + suffix drawn without replacement)."""
    total = len(_PREFIXES) * len(_CORES) * len(_SUFFIXES)
    picks = rng.choice(total, size=n, replace=n > total)
    names = []
    for i, pick in enumerate(picks):
        pick = int(pick)
        prefix, rest = divmod(pick, len(_CORES) * len(_SUFFIXES))
        core, suffix = divmod(rest, len(_SUFFIXES))
        name = f"{_PREFIXES[prefix]} {_CORES[core]} {_SUFFIXES[suffix]}"
        names.append(name if n <= total else f"{name} {i + 1}")
    return names


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct "First Last" names (a middle initial tells apart the rare repeat)."""
    seen: dict[str, int] = {}
    names = []
    for first, last in zip(
        rng.integers(0, len(FIRST_NAMES), n), rng.integers(0, len(LAST_NAMES), n), strict=True
    ):
        name = f"{FIRST_NAMES[first]} {LAST_NAMES[last]}"
        count = seen.get(name, 0)
        seen[name] = count + 1
        if count:
            name = f"{FIRST_NAMES[first]} {chr(ord('A') + (count - 1) % 26)}. {LAST_NAMES[last]}"
        names.append(name)
    return names


def slug(text: str) -> str:
    """Lower-case letters and digits only: email local parts and domains."""
    plain = text.replace("á", "a").replace("é", "e").replace("í", "i").replace("ó", "o").replace("ú", "u")
    return re.sub(r"[^a-z0-9]+", "", plain.lower())


def email(name: str, domain: str) -> str:
    parts = [slug(part) for part in name.split() if slug(part)]
    return f"{parts[0]}.{parts[-1]}@{domain}" if len(parts) > 1 else f"{parts[0]}@{domain}"


def domain_of(company: str) -> str:
    words = [slug(w) for w in company.split()[:2]]
    return "".join(words) + ".com"
