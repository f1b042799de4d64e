"""Where Graph change and lifecycle notifications enter the app.

`client_state` issues and checks the per-subscription secret; the receiver
turns a verified notification batch into compact queue messages.
"""
