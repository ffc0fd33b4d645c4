"""gluectl: the command line for the Glue jobs, job-runs, triggers and tags API.

Run it as ``gluectl`` or ``python -m clients.gluectl``.

The entry point is ``clients.gluectl.__main__.main``; ``commands`` holds the parser and runs
a command, one module per command group (``jobs``, ``runs``, ``bookmarks``, ``triggers``,
``tags``) holds its actions and one coroutine per command, ``command_kit`` what they share,
``arguments`` and ``documents`` the parsing of argument values and --from-json files, and
``output`` the JSON and table printing.
"""
