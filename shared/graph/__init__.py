"""The one Microsoft Graph client of the product (see client.py for why it is this small).

    from shared.graph import GraphApi, GraphClient, GraphError, ThrottledError, client_for_user, app_client
"""

from shared.graph.client import GraphClient
from shared.graph.errors import ForeignHostError, GraphError, ThrottledError
from shared.graph.factory import app_client, client_for_user
from shared.graph.protocol import GraphApi
from shared.graph.retry import RetryPolicy

__all__ = [
    "ForeignHostError",
    "GraphApi",
    "GraphClient",
    "GraphError",
    "RetryPolicy",
    "ThrottledError",
    "app_client",
    "client_for_user",
]
