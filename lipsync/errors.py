"""One family of errors whose messages are written for the person using the tool."""


class LipSyncError(Exception):
    """Base class: the message is shown to the user as is."""


class FaceError(LipSyncError):
    """The face input is unreadable, too large, or has no usable face."""


class NoFaceError(FaceError):
    """No face was found where one was needed."""


class AudioError(LipSyncError):
    """The speech input is unreadable, empty, or too long."""


class LiveSessionError(AudioError):
    """A live session was fed after it ended, past its time limit, or with samples it cannot take."""


class TextError(LipSyncError):
    """The text to speak is empty, too long, or in an unsupported language."""


class CheckpointError(LipSyncError):
    """A model checkpoint is missing, corrupt, or of the wrong architecture."""


class MediaToolError(LipSyncError):
    """ffmpeg or ffprobe could not do its work: not installed, timed out, or stopped (not the file's fault)."""


class MediaFileError(MediaToolError):
    """ffmpeg or ffprobe ran and failed on the file: the file's fault."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail  # the tool's own last error line


class OutputError(LipSyncError):
    """The output file cannot be written where it was asked for."""


class OptionError(LipSyncError):
    """An option has a value outside its allowed range."""
