"""RouterOS API emulator (real MikroTik wire protocol) for tests and demos.

``protocol`` holds the word/sentence encoding, ``emulator`` (a package; its ``__init__`` maps
its modules) the 127.0.0.1-only server
(:class:`~sonjog.network.routeros.emulator.RouterOSEmulator`) and ``tls`` the throw-away
certificate used by its API-SSL listener.
"""
