class CatalogError(Exception):
    """A catalogue rule was broken (a duplicate name, a price out of range); the message is fit for the user."""
