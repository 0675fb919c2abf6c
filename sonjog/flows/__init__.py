"""Cross-app business flows: the one place where billing, network and notifications meet.

A flow is a named function that makes one business event whole: "payment received -> reactivate if
cleared -> notify", "overdue -> suspend -> notice", "bills generated -> notices". Each runs in the
caller's transaction (or opens one), so the router command and the message rows commit with the
money. Every entry point (console, CLI, jobs, and later the API, gateways and portals) calls the flow,
never the domain steps one by one. See docs/adr/0009-flows-layer.md.
"""
