class ConsoleError(Exception):
    """A console rule was broken; the message is fit for the user."""
