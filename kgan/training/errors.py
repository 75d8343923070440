"""Errors a run reports to its user (imported by the CLI without TensorFlow)."""


class ConfigError(ValueError):
    """A config value is invalid; the message names the field and what it accepts."""


class RunError(RuntimeError):
    """The run cannot go on as asked; the message says why and what to do."""


class NonFiniteLossError(RunError):
    """A logged loss became NaN or infinite; nothing from that step was saved."""


class TrainingInterrupted(RunError):
    """Ctrl-C or SIGTERM arrived; the state was saved and the run can be resumed."""


class RunDirInUse(RunError):
    """Another process holds the run directory's lock (the message names its PID)."""
