"""Keeping replication alive: one subscription per replicated calendar of every account,
created, renewed, recreated when Graph drops it, and acted on when lifecycle events arrive.

    from shared.subscriptions import ensure_subscriptions, delete_subscription, renew_due
    from shared.subscriptions.lifecycle import handle_lifecycle

Graph and storage are imported inside the functions, so importing this package is cheap.
"""

from shared.subscriptions.create import (
    Subscription,
    SubscriptionError,
    SubscriptionQuotaError,
    create_subscription,
    delete_subscription,
    ensure_subscription,
    ensure_subscriptions,
)
from shared.subscriptions.renew import RenewalReport, renew_due

__all__ = [
    "RenewalReport",
    "Subscription",
    "SubscriptionError",
    "SubscriptionQuotaError",
    "create_subscription",
    "delete_subscription",
    "ensure_subscription",
    "ensure_subscriptions",
    "renew_due",
]
