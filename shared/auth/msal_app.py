"""The MSAL ConfidentialClientApplication built from settings.

Authority: AUTHORITY_HOST/TENANT. The connector's older connection kind gives
explicit AUTHORIZE_URL and TOKEN_URL instead; MSAL always discovers endpoints
from an authority, so we derive the authority from TOKEN_URL
(`<host>/<tenant>/oauth2/v2.0/token`), require AUTHORIZE_URL to sit on the
same authority, and carry the authorize URL's query (e.g. `prompt=consent`)
into each sign-in. Hosts that are not Microsoft's (a test authority, a
sovereign proxy) skip instance discovery and authority validation.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any, Protocol

from shared.config import ConfigError

if TYPE_CHECKING:
    import requests

    from shared.config import Settings

KNOWN_AUTHORITY_HOSTS = frozenset({
    "login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net",
    "login.microsoftonline.us", "login.usgovcloudapi.net", "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
})
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
_ENDPOINT_SUFFIX = {"authorize": "/oauth2/v2.0/authorize", "token": "/oauth2/v2.0/token"}


def graph_root(settings: Settings) -> str:
    """Scheme and host of GRAPH_BASE_URL: the resource of `.default` and qualified scopes."""
    parts = urllib.parse.urlsplit(settings.graph_base_url)
    return f"{parts.scheme}://{parts.netloc}"


def delegated_scopes(settings: Settings) -> list[str]:
    """GRAPH_SCOPES without the ones MSAL adds itself; qualified with the Graph root
    outside the global cloud (short names mean graph.microsoft.com)."""
    root = graph_root(settings)
    qualify = urllib.parse.urlsplit(root).hostname != "graph.microsoft.com"
    scopes = []
    for scope in settings.graph_scopes:
        if scope.lower() in RESERVED_SCOPES:
            continue
        if qualify and "://" not in scope:
            scope = f"{root}/{scope}"
        scopes.append(scope)
    return scopes


def _explicit_authority(settings: Settings) -> tuple[str, dict[str, str]]:
    """(authority, extra authorize-query params) from AUTHORIZE_URL/TOKEN_URL."""
    if not (settings.authorize_url and settings.token_url):
        raise ConfigError("AUTHORIZE_URL and TOKEN_URL are set together or not at all")
    token = urllib.parse.urlsplit(settings.token_url)
    auth = urllib.parse.urlsplit(settings.authorize_url)
    if not token.path.endswith(_ENDPOINT_SUFFIX["token"]):
        raise ConfigError(f"TOKEN_URL must end with {_ENDPOINT_SUFFIX['token']} (got {settings.token_url})")
    authority = f"{token.scheme}://{token.netloc}{token.path[: -len(_ENDPOINT_SUFFIX['token'])]}"
    expected = authority + _ENDPOINT_SUFFIX["authorize"]
    if f"{auth.scheme}://{auth.netloc}{auth.path}" != expected:
        raise ConfigError(f"AUTHORIZE_URL must be {expected} (same authority as TOKEN_URL)")
    return authority, dict(urllib.parse.parse_qsl(auth.query))


def authority_of(settings: Settings) -> tuple[str, dict[str, str]]:
    """The authority URL and any extra authorize parameters."""
    if settings.authorize_url or settings.token_url:
        return _explicit_authority(settings)
    return settings.authority, {}


def _http_session(timeout: float) -> requests.Session:
    """A requests.Session with a default timeout. requests honours REQUESTS_CA_BUNDLE
    (a test or corporate CA) for sessions with the default `verify=True`."""
    import requests

    class _Session(requests.Session):
        def request(  # type: ignore[override]  # keywords pass through unchanged; timeout gets a default
                self, method: str | bytes, url: str | bytes, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, **kwargs)

    return _Session()


class MsalApp(Protocol):
    """What the accounts area uses of msal.ConfidentialClientApplication (msal has no type information).

    Results are MSAL's token-response dicts: untyped JSON from the identity platform."""

    token_cache: Any  # msal.TokenCache: searched and pruned by TokenService.drop_app_tokens

    def initiate_auth_code_flow(self, scopes: list[str], redirect_uri: str | None = None, state: str | None = None,
                                prompt: str | None = None, login_hint: str | None = None,
                                domain_hint: str | None = None) -> dict[str, Any]: ...

    def acquire_token_by_auth_code_flow(self, auth_code_flow: dict[str, Any], auth_response: dict[str, str],
                                        scopes: list[str] | None = None) -> dict[str, Any]: ...

    def acquire_token_by_refresh_token(self, refresh_token: str, scopes: list[str]) -> dict[str, Any]: ...

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]: ...


def build_msal_app(settings: Settings, client_secret: str) -> MsalApp:
    import msal

    settings.require("client_id")
    authority, _ = authority_of(settings)
    host = urllib.parse.urlsplit(authority).hostname or ""
    microsoft = host in KNOWN_AUTHORITY_HOSTS
    kwargs: dict[str, Any] = {}
    if not microsoft:
        kwargs.update(instance_discovery=False, validate_authority=False)
    app: MsalApp = msal.ConfidentialClientApplication(
        settings.client_id,
        client_credential=client_secret,
        authority=authority,
        http_client=_http_session(settings.graph_timeout_seconds),
        **kwargs,
    )
    return app


def client_secret(settings: Settings | None = None) -> str:
    from shared.secrets import CLIENT_SECRET, open_secret_store

    value = open_secret_store(settings).get(CLIENT_SECRET)
    if not value:
        raise ConfigError(
            f"the client secret is not in the secret store: run `python -m shared secrets set {CLIENT_SECRET}`"
        )
    return value


def get_msal_app(settings: Settings | None = None) -> MsalApp:
    """The process's MSAL app (built once: it discovers endpoints over the network).

    Keyed by a digest of the client secret, so a secret rotated in the store is
    picked up when the store's cache expires, without a restart."""
    import hashlib

    from shared import runtime
    from shared.config import get_settings

    settings = settings or get_settings()
    secret = client_secret(settings)
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return runtime.cached(f"auth:msal_app:{digest}", lambda: build_msal_app(settings, secret))
