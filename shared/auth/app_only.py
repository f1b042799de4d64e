"""App-only onboarding: the tenant's users to replicate, read with client credentials.

APP_ONLY_USERS lists ids or principal names (each resolved with GET /users/{id});
APP_ONLY_GROUP adds the user members of a group (GET /groups/{id}/members,
paged). Each becomes an account in mode `app_only` whose caller id is its
Graph id, and gets a first full sync with a subscription. Re-running is
harmless: profiles are refreshed, and only new accounts get a first sync.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.auth import deps, graph_http
from shared.graph.paths import segment

if TYPE_CHECKING:
    from shared.config import Settings

log = logging.getLogger(__name__)

_USER_FIELDS = "id,displayName,userPrincipalName,mail"


@dataclass
class OnboardingReport:
    linked: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def resolve_users(settings: Settings) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """(users, failures) for APP_ONLY_USERS and APP_ONLY_GROUP, de-duplicated by id."""
    from shared.graph.factory import app_client

    graph = app_client(settings)
    users: dict[str, dict[str, Any]] = {}
    failures: list[tuple[str, str]] = []
    for entry in settings.app_only_users:
        try:
            user = graph.get(f"/users/{segment(entry)}", params={"$select": _USER_FIELDS})
            users[user["id"]] = user
        except (graph_http.GraphError, KeyError) as exc:
            failures.append((entry, str(exc)))
    if settings.app_only_group:
        path = f"/groups/{segment(settings.app_only_group)}/members"
        try:
            for member in graph.iter_values(path, params={"$select": _USER_FIELDS}):
                kind = member.get("@odata.type", "#microsoft.graph.user")
                if kind.lower() == "#microsoft.graph.user" and member.get("id"):
                    users.setdefault(member["id"], member)
        except graph_http.GraphError as exc:
            failures.append((f"group {settings.app_only_group}", str(exc)))
    return list(users.values()), failures


def link_app_only(settings: Settings, progress: Callable[[str], None] | None = None) -> OnboardingReport:
    from shared.auth.tokens import get_token_service
    from shared.config import ConfigError
    from shared.queues.messages import SyncRequest

    if not settings.app_only:
        raise ConfigError("APP_ONLY is not enabled: set APP_ONLY=true to replicate users with client credentials")
    if not settings.app_only_users and not settings.app_only_group:
        raise ConfigError("APP_ONLY needs APP_ONLY_USERS or APP_ONLY_GROUP (which users to replicate)")
    get_token_service(settings).app_token()  # fail early and clearly on a tenant-less authority
    users, failures = resolve_users(settings)
    report = OnboardingReport(failed=failures)
    repo = deps.repository(settings)
    for user in users:
        user_id = user["id"]
        data = {k: v for k, v in user.items() if not k.startswith("@odata.")}
        existing = repo.get_account(user_id)
        repo.upsert_user(user_id, data)
        if existing is not None and existing.mode == "app_only" and existing.status == "linked":
            report.unchanged.append(user_id)
            continue
        repo.update_account(user_id, status="linked", status_reason=None, status_changed_at=deps.utcnow(),
                            graph_user_id=user_id, mode="app_only")
        deps.enqueue(SyncRequest(user_id, "linked", full=True, subscribe=True), settings)
        report.linked.append(user_id)
        if progress:
            progress(f"linked {user.get('userPrincipalName') or user_id}")
    return report
