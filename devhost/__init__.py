"""A small local Functions host for machines without Azure Functions Core Tools.

It reads the registered functions of `function_app.app` (their trigger
metadata) and adapts: HTTP requests to HTTP triggers at the same routes,
methods and auth levels; NCRONTAB schedules to timer triggers; queue messages
to queue triggers with host.json's batch size, visibility timeout and poison
queue. It does not re-implement any function. With Core Tools installed,
`func start` runs the same app.
"""

from devhost.host import DevHost

__all__ = ["DevHost"]
