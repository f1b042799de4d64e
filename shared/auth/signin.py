"""Interactive sign-in: authorization code flow with PKCE through MSAL.

`start` creates the flow (MSAL adds PKCE, nonce and offline_access) and seals
it into the state (flow_store.py: nothing is stored by an anonymous start);
`complete` opens it, redeems the code, reads `/me`, claims the state (single
use), and only then writes anything: the user row with the encrypted refresh
token, the account state, and the first sync.

Whose account: always the identity that signed in. The account id is the one
already linked to that Microsoft identity (`graph_user_id`), else its Graph
object id -- so one mailbox maps to one account id, and signing in again
re-links (updates) that account instead of creating a second one that would
fight it over the same event rows. A request can only ask to *re-consent* an
account (`microsoft_user_id`): the callback refuses with 403 and stores
nothing when the person who signed in is not that account's identity.
"""

from __future__ import annotations

import logging
import secrets
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.auth import deps
from shared.auth.errors import SigninError

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.storage.base import Repository

log = logging.getLogger(__name__)

CALLBACK_PATH = "/api/oauth/callback"
MAX_USER_ID_LENGTH = 255
MAX_LOGIN_HINT_LENGTH = 320  # the longest e-mail address / principal name


@dataclass(frozen=True)
class SigninResult:
    user_id: str
    graph_user_id: str
    display_name: str
    user_principal_name: str


def redirect_uri(settings: Settings) -> str:
    return settings.app_base_url + CALLBACK_PATH


def start(settings: Settings, *, microsoft_user_id: str | None = None, login_hint: str | None = None) -> str:
    """Begin a sign-in; returns the authorize URL to send the browser to."""
    from shared.auth.flow_store import get_flow_store
    from shared.auth.msal_app import authority_of, delegated_scopes
    from shared.jsonbody import plain_text

    if microsoft_user_id is not None and not plain_text(microsoft_user_id, MAX_USER_ID_LENGTH):
        raise SigninError(f"microsoft_user_id must be 1-{MAX_USER_ID_LENGTH} characters of text")
    if login_hint is not None and not plain_text(login_hint, MAX_LOGIN_HINT_LENGTH):
        raise SigninError(f"login_hint must be 1-{MAX_LOGIN_HINT_LENGTH} characters of text")
    _, extra = authority_of(settings)
    placeholder = secrets.token_urlsafe(16)  # replaced by the sealed flow once MSAL made the verifier
    with warnings.catch_warnings():
        # MSAL recommends form_post; the callback is a GET by contract (WebhookDB-style apps and
        # the simulator), and the code it carries is single-use and bound to our PKCE verifier.
        warnings.filterwarnings("ignore", message="response_mode='form_post'", category=UserWarning)
        flow = deps.msal_app(settings).initiate_auth_code_flow(
            delegated_scopes(settings),
            redirect_uri=redirect_uri(settings),
            state=placeholder,
            login_hint=login_hint or None,
            prompt=extra.get("prompt"),
            domain_hint=extra.get("domain_hint"),
        )
    state = get_flow_store(settings).seal(flow, reconsent_user_id=microsoft_user_id)
    return _with_state(flow["auth_uri"], placeholder, state)


def _with_state(auth_uri: str, placeholder: str, state: str) -> str:
    """MSAL's authorize URL with its `state` parameter set to the sealed flow (every other
    parameter kept exactly as MSAL wrote it)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(auth_uri)
    query = [(k, state if k == "state" and v == placeholder else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _describe_denial(params: dict[str, str]) -> str:
    error = params.get("error", "")
    from shared.auth.tokens import error_reason

    description = error_reason(params) if params.get("error_description") else ""
    if error == "access_denied":
        return "Consent was declined, so the account was not connected."
    return f"The sign-in was refused ({error}{': ' + description if description else ''})."


def complete(settings: Settings, params: dict[str, str]) -> SigninResult:
    """Finish a sign-in from the callback's query parameters. Raises SigninError; stores
    nothing unless every step succeeded."""
    from shared.auth import graph_http
    from shared.auth.flow_store import get_flow_store
    from shared.auth.msal_app import delegated_scopes
    from shared.queues.messages import SyncRequest

    if params.get("error"):
        raise SigninError(_describe_denial(params))
    state = params.get("state") or ""
    if not state or not params.get("code"):
        raise SigninError("The sign-in response is missing its code or state.")
    flows = get_flow_store(settings)
    flow = flows.open(state, redirect_uri(settings))
    if flow is None:
        raise SigninError("This sign-in link is unknown or expired. Please start again.")
    try:
        result = deps.msal_app(settings).acquire_token_by_auth_code_flow(
            dict(flow.msal_flow), params, scopes=delegated_scopes(settings))
    except (ValueError, RuntimeError) as exc:  # MSAL: state or nonce mismatch, malformed response
        raise SigninError(f"The sign-in response does not match its request ({type(exc).__name__}).") from None
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
    signed_in = (result.get("id_token_claims") or {}).get("oid")
    if signed_in and signed_in != graph_user_id:
        raise SigninError("The identity token and the profile name different accounts. Nothing was stored.", 403)
    user_id = account_id_for(deps.repository(settings), graph_user_id)
    if flow.reconsent_user_id and flow.reconsent_user_id != user_id:
        who = me.get("userPrincipalName") or me.get("displayName") or "another account"
        raise SigninError(f"You signed in as {who}, which is not the account this link re-connects. "
                          "Nothing was stored; sign in with that account, or start a new link.", 403)
    if not flows.claim(state, flow):
        raise SigninError("This sign-in link was already used. Please start again.")
    link_delegated(settings, user_id, me, refresh_token, result)
    deps.enqueue(SyncRequest(user_id, "linked", full=True, subscribe=True), settings)
    log.info("account linked by sign-in: %s (user %s)", me.get("mail") or me.get("userPrincipalName") or user_id,
             user_id)
    return SigninResult(user_id, graph_user_id, str(me.get("displayName") or ""),
                        str(me.get("userPrincipalName") or ""))


def linked_as(repo: Repository, graph_user_id: str) -> list[str]:
    """Account ids already linked to the Microsoft identity `graph_user_id` (normally none or one)."""
    return sorted(a.microsoft_user_id for a in repo.list_accounts()
                  if a.graph_user_id == graph_user_id and a.status != "unlinked" and a.microsoft_user_id)


def account_id_for(repo: Repository, graph_user_id: str) -> str:
    """The one account id of a Microsoft identity: the account linked to it, else its object id."""
    ids = linked_as(repo, graph_user_id)
    return graph_user_id if not ids or graph_user_id in ids else ids[0]


def link_delegated(settings: Settings, user_id: str, me: dict[str, Any], refresh_token: str,
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
