"""The one error type every codec raises for bad input."""


class ProtocolError(ValueError):
    """Input that does not parse or does not fit the schema.

    `code` is a short stable identifier sent to peers (e.g. "bad_json", "invalid");
    the message says precisely what is wrong, for humans.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
