"""``python -m sonjog.network.routeros.emulator``: run the emulator from the command line."""

from sonjog.network.routeros.emulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
