"""Azure Functions entry point (Python v2 programming model).

Only registrations live here; every trigger is defined in a blueprint under
`shared/triggers/`. Importing this module must stay cheap (see
`bench/bench_cold_start.py`).
"""

import azure.functions as func

from shared.triggers import blueprints

app = func.FunctionApp()

for blueprint in blueprints():
    app.register_functions(blueprint)
