"""The signed-in (or app-only addressed) user."""

from __future__ import annotations

from typing import Any

from shared.actions.catalogue import action
from shared.actions.context import ActionContext


@action("Get Current User", "Get the information and metadata of the user that is currently logged in "
        "(app-only: the user given by user_id).", area="users")
def get_current_user(ctx: ActionContext, v: dict[str, Any]) -> Any:
    return ctx.client.get(ctx.me)
