"""What the importer and the exporter refuse, each with what to do next."""


class TransferError(Exception):
    """A file, a mapping or a batch that cannot be imported (or undone) as asked; nothing was written."""


class ImportHasProblems(TransferError):
    """Rows of the batch have problems: the dry run lists each; nothing was written."""

    def __init__(self, count: int, total: int) -> None:
        super().__init__(
            f"{count} of {total} rows have problems; fix them in the file (the dry run lists each) and try again"
        )
        self.count = count
        self.total = total
