"""Why a file cannot be indexed: `code` and `message` fill the vector-store file's `last_error`."""

from __future__ import annotations


class FileError(Exception):
    """A file that cannot be indexed."""

    code = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFile(FileError):
    """A file type (or text encoding) file_search does not read."""

    code = "unsupported_file"


class InvalidFile(FileError):
    """A file of a supported type that is empty, broken, encrypted, or over a parsing limit."""

    code = "invalid_file"
