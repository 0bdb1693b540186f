"""The collector's section (``collect:``, ``SOPHIA_COLLECT__…``): how pages are fetched, crawled and kept,
which feeds are polled, and the optional SaaS services (each used only when its key is set)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class SaaSService(BaseModel):
    """One optional third-party service: used when ``api_key`` is set, else the local equivalent."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None
    base_url: str | None = Field(None, description="Override the service's published API address.")
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds one API call may take.")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="Service-specific choices: apify search_actor (default apify/google-search-scraper), "
        "phantombuster leads_agent (the agent id find_leads launches).",
    )


class CollectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_url: str | None = Field(
        None,
        description="Where fetched pages are kept: None for SQLite in the data folder "
        "(collect/pages.db), postgresql://… for PostgreSQL (many workers).",
    )
    allow: list[str] = Field(
        default_factory=list,
        description="Internal sources the fetcher may reach although their addresses are private: "
        "host names, IP addresses or CIDR networks (everything else non-public is refused).",
    )
    user_agent: str = Field("SophiaBot/1.0 (+https://github.com/sophia-ai/sophia)", max_length=300)
    robots_agent: str = Field(
        "SophiaBot", max_length=100, description="The product token robots.txt rules name."
    )
    timeout: float = Field(15.0, gt=0, le=300, description="Seconds one fetch may take, redirects included.")
    max_bytes: int = Field(5_000_000, ge=1024, description="Largest body read; a bigger page is refused.")
    max_redirects: int = Field(5, ge=0, le=20)
    # crawling
    max_pages: int = Field(200, ge=1, le=1_000_000, description="Pages one crawl fetches at most (default).")
    max_depth: int = Field(
        3, ge=0, le=50, description="Links followed from the start page at most (default)."
    )
    delay: float = Field(
        1.0,
        ge=0,
        le=600,
        description="Seconds between two requests to one host (at least; "
        "robots.txt Crawl-delay may ask for more).",
    )
    host_concurrency: int = Field(2, ge=1, le=64, description="Requests in flight to one host at most.")
    workers: int = Field(4, ge=1, le=256, description="Pages one crawl worker fetches at once.")
    queue_url: str | None = Field(
        None,
        description="Redis for crawl jobs (redis://…; arq's queue): None: storage.redis_url (the gateway's counters); "
        "with neither, crawls run in-process and do not survive a restart.",
    )
    queue_name: str = Field("sophia:collect", max_length=100, description="The arq queue crawl jobs go on.")
    job_timeout: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Seconds one page job may take (politeness waits included); a job "
        "whose worker died runs again this long (+10 s) after it started.",
    )
    run_worker: bool = Field(
        True,
        description="`sophia run` also works crawl jobs (`sophia collect worker` "
        "adds workers on other machines).",
    )
    # news
    feeds: list[str] = Field(
        default_factory=list, description="RSS/Atom feeds polled by `sophia collect feeds`."
    )
    feed_interval: float = Field(900.0, ge=10, description="Seconds between two polls of one feed.")
    near_duplicate: float = Field(
        0.92, ge=0.5, le=1.0, description="Cosine similarity (MiniLM) above which two articles are one story."
    )
    page_near_duplicate: float = Field(
        0.97,
        ge=0.5,
        le=1.0,
        description="Cosine (MiniLM, a page's opening chunk) above which a page is a copy of an indexed one: "
        "stricter than for news, since pages of one site share templates and topics.",
    )
    # optional services
    tavily: SaaSService = Field(default_factory=SaaSService)
    apify: SaaSService = Field(default_factory=SaaSService)
    twingly: SaaSService = Field(default_factory=SaaSService)
    zenrows: SaaSService = Field(default_factory=SaaSService)
    phantombuster: SaaSService = Field(default_factory=SaaSService)
