"""Azure Functions entry point (Python v2 programming model).

Only registrations live here; every trigger is defined in a blueprint under
`shared/triggers/`. Importing this module must stay cheap (see
`bench/bench_cold_start.py`).
"""

import azure.functions as func

from shared.triggers import accounts, actions, health, maintenance, notifications

app = func.FunctionApp()

for blueprint in (health.bp, accounts.bp, actions.bp, maintenance.bp, notifications.bp):
    app.register_functions(blueprint)
