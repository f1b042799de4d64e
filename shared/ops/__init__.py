"""Operating the app: status, doctor, poison-message replay and window upkeep.

Used by `GET /api/status`, the maintenance timers and `python -m shared
status|doctor|replay-poison|renew` (commands.py).
"""
