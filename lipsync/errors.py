"""One family of errors whose messages are written for the person using the tool."""


class LipSyncError(Exception):
    """Base class: the message is shown to the user as is."""


class FaceError(LipSyncError):
    """The face input is unreadable, too large, or has no usable face."""


class NoFaceError(FaceError):
    """No face was found where one was needed."""


class AudioError(LipSyncError):
    """The speech input is unreadable, empty, or too long."""


class TextError(LipSyncError):
    """The text to speak is empty, too long, or in an unsupported language."""


class CheckpointError(LipSyncError):
    """A model checkpoint is missing, corrupt, or of the wrong architecture."""


class MediaToolError(LipSyncError):
    """ffmpeg or ffprobe failed or timed out."""


class OptionError(LipSyncError):
    """An option has a value outside its allowed range."""
