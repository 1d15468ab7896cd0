"""The read-only status dashboard served by the Function app (/api/ui): pages built from the state
table (data.py), rendered on the server with Jinja2 (render.py, templates/), a little JavaScript for
refresh (static/). http.py answers requests, after the sign-in check of auth.py."""
