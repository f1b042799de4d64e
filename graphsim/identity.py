"""Microsoft identity platform v2.0 endpoints: discovery, authorize, token (as MSAL uses them).

Over 400 lines because the endpoints share one state under one lock (apps, authorization codes,
refresh and access tokens, consent) that one OAuth exchange reads and writes as a whole; split, that
exchange would be spread over modules.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .jwt import Signer
from .store import Store
from .util import b64url, new_guid, now

GRAPH_RESOURCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
RESERVED = {"openid", "profile", "offline_access", "email"}
DEFAULT_APP_PERMISSIONS = ["Calendars.ReadWrite", "User.Read.All", "Mail.ReadWrite", "Mail.Send"]
DEFAULT_DELEGATED = ["User.Read", "Calendars.ReadWrite", "Mail.ReadWrite", "Mail.Send"]


@dataclass
class App:
    client_id: str
    tenant_id: str
    secrets: list[str]
    redirect_uris: list[str]
    application_permissions: list[str]
    delegated_permissions: list[str]


@dataclass
class AccessToken:
    """What the Graph front door learns from a bearer token."""

    token: str
    kind: str                 # "delegated" | "app"
    client_id: str
    tenant_id: str
    user_id: str | None
    scopes: set[str]
    roles: set[str]
    expires: float


@dataclass
class RefreshToken:
    client_id: str
    user_id: str
    tenant_id: str
    scopes: list[str]
    issued: dt.datetime
    revoked: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class OAuthError(Exception):
    """An identity-platform error: HTTP status + `error` + AADSTS code and text."""

    def __init__(self, error: str, aadsts: int, text: str, status: int = 400):
        super().__init__(f"{error}: AADSTS{aadsts}: {text}")
        self.error, self.aadsts, self.text, self.status = error, aadsts, text, status

    def body(self) -> dict[str, Any]:
        trace, corr = new_guid(), new_guid()
        ts = now().strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": describe(self.aadsts, self.text, trace, corr, ts),
            "error_codes": [self.aadsts], "timestamp": ts, "trace_id": trace, "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.aadsts}",
        }


class Identity:
    """Apps, authorization codes and tokens; the Graph front door validates bearer tokens here."""

    def __init__(self, store: Store, token_lifetime: int = 3599) -> None:
        self.store = store
        self.signer = Signer()
        self.lock = threading.RLock()
        self.token_lifetime = token_lifetime
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.apps: dict[str, App] = {}
            self.codes: dict[str, dict[str, Any]] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.consent_user: dict[str, str] = {}   # tenant id or "*" -> user id
            self.deny_all = False

    # -- registration ------------------------------------------------------
    def register_app(self, tenant_id: str, client_id: str | None = None, client_secret: str | None = None,
                     redirect_uris: list[str] | None = None,
                     application_permissions: list[str] | None = None,
                     delegated_permissions: list[str] | None = None) -> tuple[str, str]:
        with self.lock:
            cid = client_id or new_guid()
            secret = client_secret or (secrets.token_urlsafe(30)[:34] + "~")
            self.apps[cid] = App(cid, tenant_id, [secret], list(redirect_uris or []),
                                 list(DEFAULT_APP_PERMISSIONS if application_permissions is None
                                      else application_permissions),
                                 list(DEFAULT_DELEGATED if delegated_permissions is None
                                      else delegated_permissions))
            return cid, secret

    # -- discovery ---------------------------------------------------------
    def known_tenant(self, tenant: str) -> bool:
        return tenant in ("common", "organizations", "consumers") or tenant in self.store.tenants or any(
            t["domain"] == tenant for t in self.store.tenants.values())

    def tenant_id(self, tenant: str) -> str:
        for tid, t in self.store.tenants.items():
            if tenant in (tid, t["domain"]):
                return tid
        return tenant

    def openid_configuration(self, base: str, tenant: str) -> dict[str, Any]:
        issuer_tenant = "{tenantid}" if tenant in ("common", "organizations", "consumers") else self.tenant_id(
            tenant)
        return {
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
            "http_logout_supported": True, "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
                                 "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
                                 "c_hash", "email"],
            "kerberos_endpoint": f"{base}/{tenant}/kerberos",
            "tenant_region_scope": "EU", "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net", "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    # -- authorize -----------------------------------------------------------
    def authorize(self, tenant: str, q: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Consent as the configured user; answers a 302 to the redirect URI (or an error page)."""
        client_id = q.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            return _error_page(f"AADSTS700016: Application with identifier '{client_id}' was not found in "
                               f"the directory '{tenant}'.")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            return _error_page(f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does "
                               f"not match the redirect URIs configured for the application '{client_id}'.")
        state = q.get("state")

        def redirect(params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            if state is not None:
                params["state"] = state
            if q.get("response_mode") == "form_post":
                fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
                                 for k, v in params.items())
                page = (f'<html><body onload="document.forms[0].submit()"><form method="POST" '
                        f'action="{html.escape(redirect_uri)}">{fields}</form></body></html>')
                return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
            sep = "&" if "?" in redirect_uri else "?"
            return 302, {"Location": redirect_uri + sep + urllib.parse.urlencode(params)}, b""

        def err(error: str, code: int, text: str) -> tuple[int, dict[str, str], bytes]:
            desc = describe(code, text, new_guid(), new_guid(), now().strftime("%Y-%m-%d %H:%M:%SZ"))
            return redirect({"error": error, "error_description": desc,
                             "error_uri": f"https://login.microsoftonline.com/error?code={code}"})

        if q.get("response_type") != "code":
            return err("unsupported_response_type", 700054,
                       "response_type 'id_token' is not enabled for the application.")
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method", "plain")
        if challenge and method not in ("S256", "plain"):
            return err("invalid_request", 501491, "Invalid code_challenge_method.")
        scopes = (q.get("scope") or "").split()
        if not scopes:
            return err("invalid_request", 900144, "The request body must contain the following parameter: "
                       "'scope'.")
        missing = self._unconsented(app, scopes)
        if missing:
            return err("consent_required", 65001, f"The user or administrator has not consented to use the "
                       f"application with ID '{client_id}'. Send an interactive authorization request for this "
                       f"user and resource. (scope: {' '.join(missing)})")
        user_id = self._pick_user(tenant, q.get("login_hint"))
        if user_id is None:
            return err("invalid_request", 50020, "User account from identity provider does not exist in "
                       "tenant.")
        mb = self.store.mailboxes[user_id]
        if tenant not in ("common", "organizations") and self.tenant_id(tenant) != mb.tenant_id:
            return err("invalid_request", 50020, "User account does not exist in tenant.")
        if self.deny_all or not mb.consent:
            return err("access_denied", 65004, "User declined to consent to access the app.")
        code = "1.A" + secrets.token_urlsafe(48)
        with self.lock:
            self.codes[code] = {
                "client_id": client_id, "redirect_uri": redirect_uri, "user_id": user_id,
                "scopes": scopes, "challenge": challenge, "method": method, "nonce": q.get("nonce"),
                "expires": time.time() + 600, "used": False, "auth_time": int(time.time()),
            }
        return redirect({"code": code, "client_info": _client_info(mb.id, mb.tenant_id),
                         "session_state": new_guid()})

    @staticmethod
    def _unconsented(app: App, scopes: list[str]) -> list[str]:
        """Requested Graph scopes outside the app's consented delegated permissions (AAD: AADSTS65001)."""
        out = []
        for s in scopes:
            short = s.rsplit("/", 1)[-1] if s.startswith(("https://", "api://", GRAPH_APP_ID)) else s
            if s not in RESERVED and short != ".default" and short not in app.delegated_permissions:
                out.append(s)
        return out

    def _pick_user(self, tenant: str, login_hint: str | None) -> str | None:
        if login_hint:
            uid = self.store.by_upn.get(login_hint.lower())
            if uid:
                return uid
        tid = self.tenant_id(tenant)
        if tid in self.consent_user:
            return self.consent_user[tid]
        if tenant in ("common", "organizations") and "*" in self.consent_user:
            return self.consent_user["*"]
        for mb in self.store.mailboxes.values():
            if mb.tenant_id == tid or tenant in ("common", "organizations"):
                return mb.id
        return None

    # -- token ------------------------------------------------------------
    def token(self, base: str, tenant: str, form: dict[str, str], auth_header: str | None) -> dict[str, Any]:
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if auth_header and auth_header.lower().startswith("basic "):
            try:
                raw = base64.b64decode(auth_header[6:]).decode()
                b_id, b_secret = raw.split(":", 1)
                client_id = urllib.parse.unquote_plus(b_id)
                secret = urllib.parse.unquote_plus(b_secret)
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", 7000215, "Invalid client secret provided.", 401) from None
        app = self.apps.get(client_id)
        if app is None:
            raise OAuthError("unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the directory "
                             f"'{tenant}'. This can happen if the application has not been installed by the "
                             "administrator of the tenant or consented to by any user in the tenant.")
        if not secret and not form.get("client_assertion"):
            raise OAuthError("invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.", 401)
        if secret is not None and not any(hmac.compare_digest(secret, s) for s in app.secrets):
            raise OAuthError("invalid_client", 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in the request is "
                             f"the client secret value, not the client secret ID, for a secret added to app "
                             f"'{client_id}'.", 401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._grant_code(base, tenant, app, form)
        if grant == "refresh_token":
            return self._grant_refresh(base, tenant, app, form)
        if grant == "client_credentials":
            return self._grant_client(tenant, app, form)
        raise OAuthError("unsupported_grant_type", 70003,
                         f"The app requested an unsupported grant type '{grant}'.")

    def _grant_code(self, base: str, tenant: str, app: App, form: dict[str, str]) -> dict[str, Any]:
        code = form.get("code", "")
        with self.lock:
            rec = self.codes.get(code)
            if rec is None or rec["client_id"] != app.client_id:
                raise OAuthError("invalid_grant", 70000, "The provided value for the 'code' parameter is not "
                                 "valid.")
            if rec["used"]:
                raise OAuthError("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, "
                                 "please retry with a new valid code or use an existing refresh token.")
            rec["used"] = True
        if rec["expires"] < time.time():
            raise OAuthError("invalid_grant", 70008, "The provided authorization code or refresh token has "
                             "expired due to inactivity. Send a new interactive authorization request for "
                             "this user and resource.")
        if form.get("redirect_uri") != rec["redirect_uri"]:
            raise OAuthError("invalid_grant", 500112, "The reply address does not match the reply address "
                             "provided when requesting Authorization code.")
        if rec["challenge"]:
            verifier = form.get("code_verifier", "")
            if not verifier:
                raise OAuthError("invalid_grant", 501481, "The Code_Verifier does not match the "
                                 "code_challenge supplied in the authorization request.")
            expect = b64url(hashlib.sha256(verifier.encode()).digest()) if rec["method"] == "S256" else verifier
            if not hmac.compare_digest(expect, rec["challenge"]):
                raise OAuthError("invalid_grant", 501481, "The Code_Verifier does not match the "
                                 "code_challenge supplied in the authorization request.")
        return self._delegated_response(base, app, rec["user_id"], rec["scopes"], rec["nonce"],
                                        form.get("client_info") == "1", rec.get("auth_time"))

    def _grant_refresh(self, base: str, tenant: str, app: App, form: dict[str, str]) -> dict[str, Any]:
        rt_value = form.get("refresh_token", "")
        with self.lock:
            rt = self.refresh_tokens.get(rt_value)
        if rt is None or rt.client_id != app.client_id:
            raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        issued = rt.issued.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        if rt.revoked == "AADSTS700082":
            raise OAuthError("invalid_grant", 700082,
                             f"The refresh token has expired due to inactivity. The token was issued on "
                             f"{issued} and was inactive for 90.00:00:00.")
        if rt.revoked:
            num = int(rt.revoked.replace("AADSTS", "") or 50173)
            raise OAuthError("invalid_grant", num,
                             "The provided grant has expired due to it being revoked, a fresh auth token is "
                             "needed. The user might have changed or reset their password. The grant was "
                             f"issued on '{issued}' and the TokensValidFrom date (before which tokens are not "
                             f"valid) for this user is '{now().strftime('%Y-%m-%dT%H:%M:%S.0000000Z')}'.")
        scopes = (form.get("scope") or "").split() or rt.scopes
        return self._delegated_response(base, app, rt.user_id, scopes, None, form.get("client_info") == "1")

    def _grant_client(self, tenant: str, app: App, form: dict[str, str]) -> dict[str, Any]:
        if tenant in ("common", "organizations", "consumers"):
            raise OAuthError("invalid_request", 50059, "No tenant-identifying information found in either the "
                             "request or implied by any provided credentials.")
        scope = (form.get("scope") or "").split()
        if len(scope) != 1 or not scope[0].endswith("/.default"):
            raise OAuthError("invalid_scope", 1002012,
                             f"The provided value for scope {' '.join(scope)} is not valid. Client credential "
                             "flows must have a scope value with /.default suffixed to the resource identifier "
                             "(application ID URI).")
        tid = self.tenant_id(tenant)
        if tid not in self.store.tenants:
            raise OAuthError("invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        token = self._mint_access(app.client_id, tid, None, set(), set(app.application_permissions), "app")
        return {"token_type": "Bearer", "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime, "access_token": token}

    def _delegated_response(self, base: str, app: App, user_id: str, requested: list[str],
                            nonce: str | None, want_client_info: bool, auth_time: int | None = None) -> dict[str, Any]:
        mb = self.store.mailboxes.get(user_id)
        if mb is None:
            raise OAuthError("invalid_grant", 50034, "The user account does not exist in the directory.")
        missing = self._unconsented(app, requested)
        if missing:
            raise OAuthError("invalid_grant", 65001, f"The user or administrator has not consented to use the "
                             f"application with ID '{app.client_id}'. Send an interactive authorization request "
                             f"for this user and resource. (scope: {' '.join(missing)})")
        graph_scopes: list[str] = []
        shown: list[str] = []
        for s in requested:
            if s in RESERVED:
                continue
            short = s.rsplit("/", 1)[-1] if s.startswith(("https://", "api://", GRAPH_APP_ID)) else s
            if short == ".default":
                graph_scopes.extend(app.delegated_permissions)
                shown.extend(f"https://graph.microsoft.com/{p}" for p in app.delegated_permissions)
            else:
                graph_scopes.append(short)
                shown.append(s)
        # Tokens carry every permission consented for the app (static ones included), like AAD's scp.
        for p in app.delegated_permissions:
            if p not in graph_scopes:
                graph_scopes.append(p)
                shown.append(p)
        openid = "openid" in requested
        if openid:
            shown += ["openid", "profile", "email"]
        access = self._mint_access(app.client_id, mb.tenant_id, user_id, set(graph_scopes), set(), "delegated")
        rt_value = "1.A" + secrets.token_urlsafe(64)
        with self.lock:
            self.refresh_tokens[rt_value] = RefreshToken(app.client_id, user_id, mb.tenant_id,
                                                         list(requested), now())
        out: dict[str, Any] = {
            "token_type": "Bearer", "scope": " ".join(shown), "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime, "access_token": access,
        }
        if "offline_access" in requested:
            out["refresh_token"] = rt_value
        if openid:
            t = int(time.time())
            claims = {"aud": app.client_id, "iss": f"{base}/{mb.tenant_id}/v2.0", "iat": t, "nbf": t,
                      "exp": t + 3600, "auth_time": auth_time or t, "name": mb.user["displayName"],
                      "oid": user_id,
                      "preferred_username": mb.user["userPrincipalName"], "rh": "0.A" + new_guid(),
                      "sub": b64url(hashlib.sha256(f"{user_id}{app.client_id}".encode()).digest()),
                      "tid": mb.tenant_id, "uti": secrets.token_urlsafe(16), "ver": "2.0"}
            if nonce:
                claims["nonce"] = nonce
            out["id_token"] = self.signer.sign(claims)
        if want_client_info or openid:
            out["client_info"] = _client_info(user_id, mb.tenant_id)
        return out

    def _mint_access(self, client_id: str, tenant_id: str, user_id: str | None, scopes: set[str],
                     roles: set[str], kind: str) -> str:
        t = int(time.time())
        claims: dict[str, Any] = {"aud": "https://graph.microsoft.com", "iss": f"https://sts.windows.net/{tenant_id}/",
                                  "iat": t, "nbf": t, "exp": t + self.token_lifetime, "appid": client_id,
                                  "tid": tenant_id, "ver": "1.0", "uti": secrets.token_urlsafe(16)}
        if kind == "delegated":
            mb = self.store.mailboxes[user_id or ""]
            claims.update(scp=" ".join(sorted(scopes)), oid=user_id, upn=mb.user["userPrincipalName"],
                          name=mb.user["displayName"])
        else:
            claims.update(roles=sorted(roles), oid=client_id, idtyp="app")
        token = self.signer.sign(claims)
        with self.lock:
            self.access_tokens[token] = AccessToken(token, kind, client_id, tenant_id, user_id, scopes, roles,
                                                    time.time() + self.token_lifetime)
        return token

    # -- control -----------------------------------------------------------
    def revoke_refresh_tokens(self, user_id: str, code: str = "AADSTS50173") -> int:
        with self.lock:
            n = 0
            for rt in self.refresh_tokens.values():
                if rt.user_id == user_id and not rt.revoked:
                    rt.revoked = code
                    n += 1
            return n

    def expire_access_tokens(self, user_id: str | None = None) -> int:
        with self.lock:
            n = 0
            for at in self.access_tokens.values():
                if user_id is None or at.user_id == user_id:
                    at.expires = 0
                    n += 1
            return n

    def lookup(self, token: str) -> AccessToken | None:
        return self.access_tokens.get(token)


def describe(aadsts: int, text: str, trace: str, correlation: str, timestamp: str) -> str:
    """Entra ID's error_description: the AADSTS line, then trace, correlation and time on their own lines."""
    return (f"AADSTS{aadsts}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\n"
            f"Timestamp: {timestamp}")


def _client_info(uid: str, utid: str) -> str:
    return b64url(json.dumps({"uid": uid, "utid": utid}).encode())


def _error_page(text: str) -> tuple[int, dict[str, str], bytes]:
    body = (f"<html><head><title>Sign in to your account</title></head><body><p>{text}</p></body></html>")
    return 400, {"Content-Type": "text/html; charset=utf-8"}, body.encode()
