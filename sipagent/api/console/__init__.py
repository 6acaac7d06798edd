"""The web console: pages for supervisors, admins and agents, served by the
engine itself (``/`` and ``/console/...``), with nothing fetched from the
internet.  The pages only read and change things through the JSON API and
follow the event stream (``/api/events``); see pages.py for what is served
and under which headers."""
from sipagent.api.console.pages import add_console_routes

__all__ = ["add_console_routes"]
