class OperatorError(Exception):
    """A rule about operators or staff was broken; the message is fit for the user."""
