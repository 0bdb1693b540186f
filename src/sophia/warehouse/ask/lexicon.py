"""Business words that people use and catalogs do not spell: the deterministic parser's tables.

Nothing here names a metric of a particular catalog. ``METRIC_CUES`` rewrites everyday phrasing into
the words metric names, labels and synonyms use ("convert" -> "win rate", "retention" -> "net revenue
retention"); ``DIMENSION_WORDS`` names the group-by columns the way people say them; ``MISSING``
lists data a B2B warehouse often lacks, with the columns that would provide it, so an abstention
happens only when the schema really has none of them.
"""

from __future__ import annotations

__all__ = [
    "DIMENSION_WORDS",
    "ENTITY_WORDS",
    "LOWER_IS_BETTER",
    "METRIC_CUES",
    "MISSING",
    "OFF_TOPIC",
    "SQL_CUES",
    "VALUE_ALIASES",
    "WEAK_COLUMNS",
]

#: everyday phrase -> the phrases ("|"-separated) a metric's name, label or synonyms are likely to use
METRIC_CUES: dict[str, str] = {
    "convert": "win rate|conversion rate", "conversion": "win rate|conversion rate", "close rate": "win rate",
    "closing rate": "win rate", "hit rate": "win rate", "success rate": "win rate", "win ratio": "win rate",
    "how do we do against": "win rate", "how do we fare against": "win rate", "how are we doing against": "win rate",
    "how do we stack up": "win rate", "compete": "win rate", "competing": "win rate", "beat": "win rate",
    "head to head": "win rate", "winning": "win rate", "perform against": "win rate",
    "retention": "net revenue retention", "retain": "net revenue retention", "nrr": "net revenue retention",
    "keep customers": "net revenue retention", "grr": "gross revenue retention", "attrition": "churn",
    "cancel": "churn", "lose customers": "churned accounts", "lost customers": "churned accounts",
    "logo churn": "churned accounts", "revenue": "revenue", "recurring revenue": "mrr", "income": "revenue",
    "top line": "revenue", "arr": "arr", "mrr": "mrr", "booked": "bookings", "closed revenue": "bookings",
    "sold": "bookings", "pipe": "pipeline", "open deals": "pipeline", "deal size": "average deal size",
    "ticket size": "average deal size", "acv": "average deal size", "sales cycle": "sales cycle",
    "time to close": "sales cycle", "take to close": "sales cycle", "velocity": "sales cycle",
    "upsell": "expansion mrr", "downgrade": "contraction mrr", "talk time": "call duration",
    "how long are calls": "call duration", "meetings": "calls", "conversations": "calls",
    "pushback": "objections", "concerns": "objections", "satisfaction": "csat", "happy": "csat",
    "satisfied": "csat", "support load": "tickets", "issues": "tickets", "complaints": "tickets",
    "engagement": "usage events", "adoption": "accounts using the product", "usage": "usage events",
    "active users": "accounts using the product", "collections": "revenue", "collected": "revenue",
    "cash": "revenue", "billed": "invoiced", "billing": "invoiced", "new logos": "new customers",
    "signed": "new customers", "clients": "accounts", "customer base": "active accounts",
}  # fmt: skip

#: group-by column (the part after ``entity__``) -> the ways people name it
DIMENSION_WORDS: dict[str, tuple[str, ...]] = {
    "region": ("region", "territory", "geography", "geo", "area", "market", "location"),
    "segment": ("segment", "customer size", "company size", "account size", "size", "tier", "portfolio size"),
    "pms_vendor": ("pms", "pms vendor", "property management system", "property management software", "vendor", "platform", "system they use"),
    "competitor": ("competitor", "competition", "rival", "competitive", "vs competitors", "against competitors", "versus competitors"),
    "deal_type": ("deal type", "type of deal", "kind of deal", "deal kind", "motion"),
    "stage": ("stage", "pipeline stage", "funnel stage", "deal stage", "phase"),
    "product": ("product", "sku", "offering"),
    "feature": ("feature", "module", "capability"),
    "plan": ("plan", "pricing plan", "subscription plan", "package"),
    "manager_name": ("manager", "sales manager", "team manager"),
    "call_type": ("call type", "type of call", "kind of call"),
    "outcome": ("outcome", "result"),
    "category": ("category", "kind", "topic", "reason"),
    "priority": ("priority", "severity"),
    "status": ("status",),
    "method": ("payment method", "method"),
    "title": ("title", "job title", "role"),
    "lost_reason": ("lost reason", "loss reason", "reason lost", "why we lose", "why we lost"),
    "speaker_role": ("speaker role",),
}  # fmt: skip

#: entity (the part before ``__``) -> the nouns that name it; a name column takes the entity's nouns
ENTITY_WORDS: dict[str, tuple[str, ...]] = {
    "rep": ("rep", "sales rep", "salesperson", "sales person", "seller", "ae", "account executive", "who", "salespeople", "sales people", "individual"),
    "team": ("team", "sales team", "squad", "group"),
    "account": ("account", "customer", "client", "company", "property manager", "logo"),
    "deal": ("deal", "opportunity", "opp", "oppty"),
    "call": ("call", "conversation", "meeting"),
    "ticket": ("ticket", "support ticket", "case"),
    "support_ticket": ("ticket", "support ticket", "case"),
    "subscription": ("subscription",),
    "invoice": ("invoice",),
    "payment": ("payment",),
    "contact": ("contact", "buyer", "stakeholder"),
    "objection": ("objection",),
}  # fmt: skip

#: words for a value the warehouse spells otherwise: column -> value -> phrases
VALUE_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "segment": {
        "Enterprise": ("enterprise", "large portfolio", "large portfolios", "big portfolio", "large customer", "large account", "big customer", "big account", "large client", "biggest customer", "largest customer", "large property manager", "big property manager", "enterprise size"),
        "SMB": ("smb", "small business", "small customer", "small account", "small portfolio", "smaller customer", "small client", "small property manager"),
        "Mid-Market": ("mid market", "midmarket", "mid size", "midsize", "mid sized", "medium size", "medium sized", "medium customer", "mid tier"),
    },
}  # fmt: skip

#: columns whose values are ordinary words: such a value filters only next to a word naming its column
WEAK_COLUMNS = frozenset({
    "stage", "deal_type", "status", "outcome", "call_type", "priority", "method", "category", "plan",
    "product", "feature", "title", "lost_reason", "speaker_role",
})  # fmt: skip

#: metric-name words for which less is better ("best churn" sorts ascending)
LOWER_IS_BETTER = (
    "churn",
    "contraction",
    "lost",
    "loss",
    "days",
    "cycle",
    "time",
    "overdue",
    "duration_to",
    "resolution",
    "cost",
    "tickets",
    "open_tickets",
)

#: data people ask for that such a warehouse often lacks: (phrases, what to say, columns that would provide it)
MISSING: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = (
    (("salary", "salaries", "compensation", "payroll", "wage", "wages", "bonus", "commission", "commissions", "pay our", "paid our reps", "reps paid", "reps earn"), "employee salaries or compensation", ("salary", "compensation", "commission")),
    (("quota", "quotas", "attainment", "sales target", "targets", "goal", "goals", "plan attainment"), "sales quotas or targets", ("quota", "target")),
    (("marketing spend", "ad spend", "advertising", "campaign", "campaigns", "cac", "acquisition cost", "cost per lead", "cpl", "marketing budget", "marketing qualified", "mql", "mqls", "sql leads", "webinar"), "marketing campaigns or spend", ("campaign", "spend", "marketing")),
    (("lead source", "lead sources", "channel", "channels", "utm", "referral source", "where leads come from", "source of leads", "inbound vs outbound", "inbound", "outbound"), "lead sources or marketing channels", ("lead_source", "channel", "source")),
    (("website", "web traffic", "site traffic", "page views", "pageviews", "visitors", "bounce rate", "seo", "sessions"), "web analytics (site traffic)", ("page_views", "sessions", "visits")),
    (("industry", "industries", "vertical", "verticals", "sector"), "the industry of accounts", ("industry", "vertical", "sector")),
    (("city", "cities", "zip", "zip code", "postal code", "by state", "per state", "each state", "which state", "which states", "us states", "county", "address", "street"), "account locations below region (city, state, address)", ("city", "state", "zip", "address", "postal_code")),
    (("gender", "age of", "ethnicity", "demographic", "demographics", "how old"), "people's demographics", ("gender", "age", "birth")),
    (("nps", "net promoter", "promoter score"), "NPS scores (there is CSAT on support tickets only)", ("nps",)),
    (("profit", "profits", "profitable", "profitability", "margin", "margins", "cogs", "cost of goods", "expenses", "expense", "opex", "ebitda", "burn rate", "operating cost", "costs", "hosting cost", "cost to serve", "spend on", "budget"), "costs, expenses or margins", ("cost", "expense", "margin", "cogs")),
    (("stock price", "share price", "market cap", "stock market", "nasdaq", "shares", "valuation", "investors"), "stock market or valuation data", ("stock", "share_price")),
    (("employee count", "number of employees", "how many employees", "employees", "staff", "headcount of", "hr data", "attrition of employees", "vacation", "pto", "sick days", "hours worked", "working hours", "work hours", "hours did", "hours do", "overtime", "timesheet", "employee satisfaction", "enps", "hiring plan", "open roles", "recruiting"), "HR data on employees (only sales reps and their teams are recorded)", ("employee", "headcount", "hours")),
    (("rent", "rents", "rental rate", "rental rates", "occupancy", "vacancy", "vacancies", "tenant", "tenants", "lease renewals of residents", "evictions", "move ins", "move outs"), "property operations of customers (rents, occupancy, tenants)", ("rent", "occupancy", "vacancy", "tenant")),
    (("email open", "open rate", "click rate", "click through", "emails sent", "email campaign", "newsletter", "unsubscribe"), "email engagement", ("email_opens", "clicks")),
    (("market share", "competitor revenue", "competitors revenue", "competitor pricing", "competitors pricing", "competitors charge", "competitor charge", "their pricing", "competitor's customers", "competitors customers", "competitor headcount"), "competitors' own figures (the warehouse only records which competitor was in a deal or an objection)", ("market_share",)),
    (("discount", "discounts", "discounting", "list price"), "deal discounts or list prices", ("discount", "list_price")),
    (("uptime", "outage", "outages", "downtime", "latency", "incident", "incidents", "bugs", "bug", "deploys", "deployments", "commits", "pull requests", "github", "jira", "sprint"), "engineering or system operations data", ("uptime", "incident", "bug")),
    (("social media", "twitter", "linkedin", "facebook", "instagram", "followers", "tiktok", "reviews on g2", "g2", "capterra", "glassdoor", "reviews"), "social media or review sites", ("followers", "reviews")),
    (("inventory", "shipping", "shipments", "warehouse stock", "supply chain", "orders shipped"), "inventory or shipping (the company sells software)", ("inventory", "shipment")),
    (("conference", "conferences", "trade show", "events attended", "travel", "expense report"), "events or travel", ("travel",)),
    (("sentiment", "mood", "tone of voice"), "sentiment scores (transcripts are text only)", ("sentiment",)),
    (("language", "languages", "spanish", "french speaking"), "the language of customers", ("language",)),
    (("time zone", "timezone"), "time zones", ("timezone",)),
    (("birthday", "birthdays", "phone number", "phone numbers", "linkedin profile", "home address"), "personal details of people", ("phone", "birthday")),
)  # fmt: skip

#: topics no business warehouse answers
OFF_TOPIC: tuple[tuple[tuple[str, ...], str], ...] = (
    (("weather", "temperature", "rain", "raining", "snow", "sunny", "forecast for tomorrow", "humidity"), "weather"),
    (("football", "soccer", "basketball", "nba", "nfl", "super bowl", "world cup", "baseball", "olympics", "game score", "who won the game"), "sports"),
    (("recipe", "cook", "cooking", "bake", "dinner", "lunch", "restaurant", "pizza", "coffee"), "food or cooking"),
    (("movie", "movies", "film", "netflix", "song", "music", "album", "tv show", "celebrity"), "entertainment"),
    (("president", "election", "elections", "politics", "senator", "congress", "government policy"), "politics"),
    (("capital of", "population of", "tallest", "distance between", "how far is", "translate", "meaning of life", "joke", "poem", "haiku", "write a story", "who invented", "history of rome"), "general knowledge or writing requests"),
    (("bitcoin", "crypto", "ethereum", "exchange rate", "interest rate", "inflation", "gdp", "mortgage rate", "fed rate", "unemployment rate"), "markets or the economy"),
    (("flight", "flights", "hotel", "vacation plans", "airline"), "travel"),
    (("horoscope", "zodiac", "lottery"), "fortune telling"),
)  # fmt: skip

#: words that ask for rows, facts or conditions that a metric's aggregate cannot give (answerable by SQL)
SQL_CUES: tuple[str, ...] = (
    "list", "name the", "names of", "name of", "who is", "who are", "who was", "which accounts", "which customers",
    "which deals", "which contacts", "biggest deal", "largest deal", "largest deals", "biggest deals",
    "smallest deal", "longest call", "shortest call", "latest", "most recent", "oldest", "newest", "earliest",
    "first", "very first", "when did", "when was", "what date", "median", "percentile", "distribution",
    "correlation", "correlate", "ratio of", "share of", "percentage of", "percent of", "fraction of",
    "proportion of", "never", "no", "none", "without", "at all", "have not", "haven't", "did not", "didn't",
    "more than", "less than", "fewer than", "longer than", "shorter than", "at least", "at most", "exactly",
    "within", "same day", "both", "details", "time to", "how long", "in hours", "in minutes", "in days",
    "email", "emails", "email address", "phone",
)  # fmt: skip
