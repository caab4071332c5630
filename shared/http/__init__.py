"""The HTTP skeleton the three services share.

- :mod:`shared.http.problems`: RFC 9457 ``application/problem+json`` answers;
- :mod:`shared.http.auth`: API key authentication, scopes and rate limits
  (``require(scope)``, one FastAPI dependency for every route);
- :mod:`shared.http.app`: :func:`~shared.http.app.service_app`, how each service
  builds its app (ops routes, authenticator, error handlers, outage answers).
"""
