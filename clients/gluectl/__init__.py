"""gluectl: the command line for the Glue jobs, job-runs, triggers and tags API.

Run it as ``gluectl`` or ``python -m clients.gluectl``.

The entry point is ``clients.gluectl.__main__.main``; ``commands`` holds the parser and one
coroutine per command, ``output`` the JSON and table printing.
"""
