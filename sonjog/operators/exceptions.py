class OperatorError(Exception):
    """A rule about operators or staff was broken; the message is fit for the user."""


class StaffError(OperatorError):
    """A staff login or role could not be made or changed as asked (bad username, weak password...)."""


class PrivilegeError(StaffError):
    """The acting login may not do this to staff or roles: outside its subtree, a more powerful role,
    an owner without being one, or itself."""
