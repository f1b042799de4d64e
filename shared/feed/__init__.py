"""The change feed: what the app tells the user's systems, and how it gets there.

- `contract.py` names each outbound message kind and its JSON Schema
  (`schemas/<kind>.v<n>.json`, shipped with the app and documented in
  docs/CHANGE_FEED.md);
- `endpoints.py` parses the WEBHOOKS setting (which endpoints, which kinds,
  which users) and refuses URLs that are not HTTPS (http only on loopback);
- `fanout.py` puts feed messages on their queue and one delivery job per
  matching endpoint on the `webhook-deliveries` queue;
- `delivery.py` signs and POSTs one job, retries with backoff honouring
  Retry-After, and dead-letters it after the last attempt;
- `signing.py` is the HMAC-SHA256 scheme receivers verify.
"""
