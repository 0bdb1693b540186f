"""The collect room: pages, sites and feeds gathered from the web without becoming a confused deputy.

``addresses`` holds the SSRF policy (which URLs, hosts and addresses may be reached; the allow-list
opens named internal sources) and ``fetch`` the fetcher that applies it: resolve once, check every
address, dial only the checked ones, re-check every redirect, cap bytes and time.
"""
