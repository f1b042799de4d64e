"""Interactive sign-in: authorization code flow with PKCE through MSAL.

`start` creates the flow (MSAL adds PKCE, nonce and offline_access) and keeps
it server-side under its state; `complete` takes that flow (single use),
redeems the code, reads `/me`, and only then writes anything: the user row
with the encrypted refresh token, the account state, and the first sync.
"""

from __future__ import annotations

import logging
import secrets
import warnings
from dataclasses import dataclass
from typing import Any

from shared.auth import deps
from shared.auth.errors import SigninError

log = logging.getLogger(__name__)

CALLBACK_PATH = "/api/oauth/callback"
MAX_USER_ID_LENGTH = 255


@dataclass(frozen=True)
class SigninResult:
    user_id: str
    graph_user_id: str
    display_name: str
    user_principal_name: str


def redirect_uri(settings) -> str:
    return settings.app_base_url + CALLBACK_PATH


def start(settings, *, microsoft_user_id: str | None = None, login_hint: str | None = None) -> str:
    """Begin a sign-in; returns the authorize URL to send the browser to."""
    from shared.auth.flow_store import get_flow_store
    from shared.auth.msal_app import authority_of, delegated_scopes

    if microsoft_user_id is not None and not (0 < len(microsoft_user_id) <= MAX_USER_ID_LENGTH):
        raise SigninError(f"microsoft_user_id must be 1-{MAX_USER_ID_LENGTH} characters")
    _, extra = authority_of(settings)
    state = secrets.token_urlsafe(32)
    with warnings.catch_warnings():
        # MSAL recommends form_post; the callback is a GET by contract (WebhookDB-style apps and
        # the simulator), and the code it carries is single-use and bound to our PKCE verifier.
        warnings.filterwarnings("ignore", message="response_mode='form_post'", category=UserWarning)
        flow = deps.msal_app(settings).initiate_auth_code_flow(
            delegated_scopes(settings),
            redirect_uri=redirect_uri(settings),
            state=state,
            login_hint=login_hint or None,
            prompt=extra.get("prompt"),
            domain_hint=extra.get("domain_hint"),
        )
    get_flow_store(settings).put(state, flow, microsoft_user_id=microsoft_user_id)
    return flow["auth_uri"]


def _describe_denial(params: dict[str, str]) -> str:
    error = params.get("error", "")
    from shared.auth.tokens import error_reason

    description = error_reason(params) if params.get("error_description") else ""
    if error == "access_denied":
        return "Consent was declined, so the account was not connected."
    return f"The sign-in was refused ({error}{': ' + description if description else ''})."


def complete(settings, params: dict[str, str]) -> SigninResult:
    """Finish a sign-in from the callback's query parameters. Raises SigninError; stores
    nothing unless every step succeeded."""
    from shared.auth import graph_http
    from shared.auth.flow_store import get_flow_store
    from shared.auth.msal_app import delegated_scopes
    from shared.queues.messages import SyncRequest

    state = params.get("state") or ""
    record = get_flow_store(settings).take(state) if state else None  # consumed even on denial
    if params.get("error"):
        raise SigninError(_describe_denial(params))
    if not state or not params.get("code"):
        raise SigninError("The sign-in response is missing its code or state.")
    if record is None:
        raise SigninError("This sign-in link is unknown, expired or was already used. Please start again.")
    try:
        result = deps.msal_app(settings).acquire_token_by_auth_code_flow(
            record["flow"], params, scopes=delegated_scopes(settings))
    except ValueError as exc:  # MSAL: state mismatch or malformed response
        raise SigninError(f"The sign-in response does not match its request ({exc}).") from None
    except OSError as exc:
        raise SigninError(f"The identity platform could not be reached ({type(exc).__name__}).", 502) from None
    if "error" in result or "access_token" not in result:
        from shared.auth.tokens import error_reason

        raise SigninError(f"The authorization code could not be redeemed: {error_reason(result)}")
    refresh_token = result.get("refresh_token")
    if not refresh_token:
        raise SigninError("No refresh token was issued (offline_access was not granted).")
    try:
        me = graph_http.get_json(settings, "/me", result["access_token"])
    except graph_http.GraphError as exc:
        raise SigninError(f"Your profile could not be read from Microsoft Graph ({exc}).", 502) from None

    graph_user_id = str(me.get("id") or "")
    if not graph_user_id:
        raise SigninError("Microsoft Graph returned a profile without an id.", 502)
    user_id = record.get("microsoft_user_id") or graph_user_id
    link_delegated(settings, user_id, me, refresh_token, result)
    deps.enqueue(SyncRequest(user_id, "linked", full=True, subscribe=True), settings)
    log.info("account linked by sign-in: %s (user %s)", me.get("mail") or me.get("userPrincipalName") or user_id,
             user_id)
    return SigninResult(user_id, graph_user_id, str(me.get("displayName") or ""),
                        str(me.get("userPrincipalName") or ""))


def link_delegated(settings, user_id: str, me: dict[str, Any], refresh_token: str,
                   token_result: dict[str, Any] | None = None) -> None:
    """Store the user row (refresh token encrypted) and mark the account linked."""
    from shared.auth.tokens import get_token_service

    repo = deps.repository(settings)
    encrypted = deps.cipher(settings).encrypt(refresh_token, user_id)
    repo.upsert_user(user_id, me, encrypted_refresh_token=encrypted)
    repo.update_account(user_id, status="linked", status_reason=None, status_changed_at=deps.utcnow(),
                        graph_user_id=str(me.get("id") or ""), mode="delegated")
    service = get_token_service(settings)
    service.invalidate(user_id)
    if token_result and token_result.get("access_token"):
        service.remember(user_id, token_result["access_token"], token_result.get("expires_in", 3599))
