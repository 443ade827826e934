"""The one error type of the pipeline: a stable code plus a message that names the fix."""


class PipelineError(Exception):
    """Bad config, missing input or failed check. The CLI prints `error[<code>]: <message>`."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code

    def __str__(self):
        return f"error[{self.code}]: {self.args[0]}"
