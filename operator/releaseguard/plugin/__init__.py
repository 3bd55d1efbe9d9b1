"""`kubectl releaseguard`: read, check and steer guards from a terminal.

A separate entry point (the executable `kubectl-releaseguard`): the operator never
imports this package (import-linter enforces it), so nothing here is on its hot path.
The pure parts (views, timeline, undo, checking) take guards, Events and objects as
plain dicts and import nothing that talks to a cluster; `cluster` and `commands` do
the reads and writes through the official client, with a timeout on every request.
"""
