"""Everything the Outlook connectors can do, as one catalogue of actions.

    from shared.actions import ACTIONS, run_action
    run_action("create-event", user_id="alice@contoso.com", inputs={"subject": "Standup", ...})

The HTTP endpoint (shared/triggers/actions.py) and the CLI (commands.py) read
the same catalogue. Area modules register their actions on import.
"""

from shared.actions import calendars, events, mail, raw, schedule, subscriptions, users  # noqa: F401
from shared.actions.catalogue import ACTIONS, Action, Binary, Input, InputError, get_action, parse_inputs
from shared.actions.context import ActionContext
from shared.actions.runner import error_status, run_action

__all__ = [
    "ACTIONS",
    "Action",
    "ActionContext",
    "Binary",
    "Input",
    "InputError",
    "error_status",
    "get_action",
    "parse_inputs",
    "run_action",
]
