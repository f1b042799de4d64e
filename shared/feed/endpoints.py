"""The WEBHOOKS setting: the user's HTTPS endpoints, which kinds and which users each receives.

    WEBHOOKS='[{"name": "crm", "url": "https://hooks.example.com/calendar",
                "kinds": ["row.created", "row.updated", "row.deleted"], "users": ["<microsoft_user_id>"]}]'

`kinds` and `users` are optional (default: every kind, every user). Each
endpoint signs with the secret `webhook-<name>` of the secret store (Key Vault
in Azure; `python -m shared secrets set webhook-<name>` locally), or the name
given as `secret`. URLs must be https; plain http is accepted only for a
loopback host (a receiver on the developer's machine).
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.parse
from dataclasses import dataclass

from shared.feed.contract import KINDS

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_KEYS = {"name", "url", "kinds", "users", "secret"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    kinds: tuple[str, ...] = KINDS
    users: tuple[str, ...] = ()   # empty: every user
    secret: str = ""

    @property
    def secret_name(self) -> str:
        return self.secret or f"webhook-{self.name}"

    def wants(self, kind: str, user_id: str | None) -> bool:
        """Whether a message of `kind` about `user_id` (None: not about one mailbox) goes here."""
        if kind not in self.kinds:
            return False
        return not self.users or user_id in self.users


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """The URL when it is https (or http to a loopback host); ValueError saying why not otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"webhook url {url!r} is not an absolute https URL")
    if parts.username or parts.password:
        raise ValueError("webhook url must not carry credentials; the signature authenticates requests")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"webhook url {url!r} must use https (plain http only for a loopback host)")
    return url


def _strings(raw: object, what: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise ValueError(f"{what} must be a list of non-empty strings")
    return tuple(raw)


def parse_endpoint(raw: object) -> Endpoint:
    if not isinstance(raw, dict):
        raise ValueError("each webhook is an object with name and url")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"unknown webhook keys {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"webhook name {name!r}: 1-40 lowercase letters, digits or '-'")
    url = raw.get("url")
    if not isinstance(url, str):
        raise ValueError(f"webhook {name}: url is required")
    kinds = _strings(raw["kinds"], f"webhook {name}: kinds") if "kinds" in raw else KINDS
    bad = set(kinds) - set(KINDS)
    if bad:
        raise ValueError(f"webhook {name}: unknown kinds {sorted(bad)} (known: {', '.join(KINDS)})")
    users = _strings(raw["users"], f"webhook {name}: users") if "users" in raw else ()
    secret = raw.get("secret", "")
    if not isinstance(secret, str) or (secret and not re.match(r"^[0-9A-Za-z-]{1,127}$", secret)):
        raise ValueError(f"webhook {name}: secret must name a secret (letters, digits, '-')")
    return Endpoint(name, check_url(url), kinds, users, secret)


def parse_endpoints(text: str) -> tuple[Endpoint, ...]:
    """The WEBHOOKS setting's value (a JSON array of endpoints) parsed and checked."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"expected a JSON array of webhooks ({exc})") from None
    if not isinstance(raw, list):
        raise ValueError("expected a JSON array of webhooks")
    endpoints = tuple(parse_endpoint(item) for item in raw)
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise ValueError("webhook names must be unique")
    return endpoints
