class NetworkError(Exception):
    """A network rule was broken; the message is fit for the user."""
