"""Secrets in Azure Key Vault through `azure-keyvault-secrets`.

`DefaultAzureCredential` covers managed identity in Azure and `az login` on a
workstation. The SDK is imported on first use only (cold starts). Deleting a
secret in a vault with soft-delete keeps its name reserved until purged, so
callers use fresh names for short-lived items (sign-in flows, new keys).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from shared.secrets import SecretStore, check_name

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.keyvault.secrets import SecretClient


class KeyVaultSecretStore(SecretStore):
    def __init__(self, vault_url: str, credential: TokenCredential | None = None, **client_options: object) -> None:
        """`client_options` go to SecretClient (tests: connection_verify,
        verify_challenge_resource=False)."""
        self.vault_url = vault_url
        self._credential = credential
        self._options = client_options
        self._client: SecretClient | None = None

    @property
    def client(self) -> SecretClient:
        if self._client is None:
            from azure.keyvault.secrets import SecretClient

            credential = self._credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = self._credential = DefaultAzureCredential()
            self._client = SecretClient(vault_url=self.vault_url, credential=credential, **self._options)
        return self._client

    def get(self, name: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            value: str | None = self.client.get_secret(check_name(name)).value
            return value
        except ResourceNotFoundError:
            return None

    def set(self, name: str, value: str) -> None:
        self.client.set_secret(check_name(name), value)

    def delete(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        # The service deletes at once; the poller only reports the soft-delete state.
        with contextlib.suppress(ResourceNotFoundError):
            self.client.begin_delete_secret(check_name(name))

    def names(self, prefix: str = "") -> list[str]:
        return sorted(
            props.name for props in self.client.list_properties_of_secrets()
            if props.name and props.name.startswith(prefix) and props.enabled is not False
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
