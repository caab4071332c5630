"""API keys: random bearer tokens with scopes, stored only as a hash.

- :mod:`shared.apikeys.scopes`: what a key may do (``admin`` implies every scope);
- :mod:`shared.apikeys.tokens`: making a key and its digest (pure);
- :mod:`shared.apikeys.ratelimit`: the per-key token bucket (pure, clock passed in);
- :mod:`shared.apikeys.store`: the ``api_keys`` table (create, list, revoke, touch);
- :mod:`shared.apikeys.cache`: the keys a running service accepts, refreshed by
  LISTEN/NOTIFY and a periodic full reload;
- :mod:`shared.apikeys.cli`: ``slawatch keys create|list|revoke``.

The HTTP side (the ``require(scope)`` dependency) is :mod:`shared.http.auth`.
"""
