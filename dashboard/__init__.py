"""The ops dashboard: a Starlette app that reads core's repositories and renders Jinja2."""
