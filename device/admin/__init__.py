"""The door's local admin web page (``edgeface admin``): people, enrollment by photo or camera, events, status.

Starlette served by uvicorn, Jinja2 templates, no JavaScript. Accounts are argon2 hashes in a 0600 file
(:mod:`.accounts`); sessions, CSRF and login rate limits are in :mod:`.auth`; security headers and error pages
in :mod:`.security`; the app factory in :mod:`.app`. Nothing here imports torch, and starlette/uvicorn are
imported only by this package (the ``admin`` extra).
"""
