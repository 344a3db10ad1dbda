"""Every knob of a lip-sync run in one frozen dataclass: each option's default, allowed values, help and the words
the page shows are declared here, on its field, and the CLIs, the batch columns and the app are made from that."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .errors import OptionError

ALL_FACES = -1
LANDMARK_MASKS = ("face", "mouth")  # the masks drawn from a face's landmarks
# Output size limits as people name them: the short side in pixels.
OUTPUT_SIZES = (2160, 1440, 1080, 720, 480, 360)


@dataclass(frozen=True)
class Option:
    """What a setting a request may choose is, for the people who choose it."""
    help: str  # one line, for --help and the batch columns
    label: str = ""  # the page's label; "" where the page does not offer the setting
    choices: tuple[tuple[str, str], ...] = ()  # (value, the page's words for it), in the order shown
    aliases: tuple[tuple[str, str], ...] = ()  # (another accepted spelling, the value it means)
    flags: tuple[str, ...] = ()  # further command-line spellings (for a true/false option: ones that turn it off)
    words: str = ""  # how a message names the setting, where the field name would not read as words

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.choices)


def option(default, **declared):
    return field(default=default, metadata={"option": Option(**declared)})


@dataclass(frozen=True)
class LipSyncConfig:
    checkpoint: str = option(
        "wav2lip_gan", help="which Wav2Lip weights: the GAN ones draw a sharper mouth", label="Model",
        choices=(("wav2lip_gan", "Sharper face (Wav2Lip GAN)"), ("wav2lip", "Closest lip sync (Wav2Lip)")))
    checkpoint_dir: str | None = option(
        None, help="folder with user-supplied checkpoints; without it $LIPSYNC_CHECKPOINT_DIR, else the "
                   "Hugging Face Hub")
    detector: str = option(
        "s3fd", help="face finder: s3fd (accurate, 90 MB of weights) or haar (quick, no download)",
        label="Face finder", choices=(("s3fd", "Accurate (S3FD)"), ("haar", "Quick (Haar)")))
    box: tuple[int, int, int, int] | None = option(
        None, help="fixed face box TOP BOTTOM LEFT RIGHT in input pixels; skips face finding",
        label="Fixed face box (pixels)", words="The face box")
    pads: tuple[int, int, int, int] = option(
        (0, 10, 0, 0), help="margin TOP BOTTOM LEFT RIGHT added to the found box, in pixels",
        label="Margin around the face (pixels)", words="Pads")
    smoothing: str = option(
        "one_euro", help="steadying of the face box from frame to frame", label="Steadying the face box",
        choices=(("one_euro", "Steady, quick to follow"), ("mean", "Steadiest (average)"), ("none", "Off")))
    face_index: int = option(
        0, help=f"which face: 0 = the largest, then left to right; {ALL_FACES} = every face",
        label="Which face", words="The face number")
    blend: str = option(
        "feather", help="the new mouth's edge", label="Mouth edge",
        choices=(("feather", "Soft edge"), ("hard", "Hard edge")))
    color_match: bool = option(True, help="the new mouth takes the colour of the face around it",
                               label="Match skin colour")
    keep_silence: bool = option(True, help="the mouth rests while nobody speaks", label="Still lips in silences")
    align_roll: bool = option(True, help="straighten tilted heads for the model, and turn the mouth back",
                              label="Straighten tilted heads", flags=("--no-align",))
    output_size: int = option(
        1080, help="the short side of the output at most, e.g. 1080p or 720p; smaller inputs keep their size",
        label="Output size", words="The output size")
    precision: str = option(
        "auto", help="auto: bf16 on a CPU with native bf16, fp16 on CUDA, else fp32", label="Precision",
        choices=(("auto", "Automatic"), ("fp32", "Exact (fp32)"), ("bf16", "Fast (bf16)"),
                 ("fp16", "Fast on a GPU (fp16)")))
    enhance: str = option(
        "auto", help="enhance the generated face with GFPGAN (auto: on a GPU only; seconds a frame on a CPU)",
        label="Enhance the face (GFPGAN)",
        choices=(("auto", "Automatic (on a GPU only)"), ("none", "Off"), ("gfpgan", "On")),
        aliases=(("off", "none"), ("on", "gfpgan")))
    batch_size: int = option(0, help="frames per model call (0: chosen for the device)", words="The batch size")
    device: str = option("auto", help="where the models run", choices=(("auto", "Automatic"), ("cpu", "CPU"),
                                                                        ("cuda", "GPU (CUDA)")))
    score: str = option(
        "auto", help="score the result's lip sync with SyncNet (LSE-D, LSE-C, offset); auto: on a GPU only, where it "
                     "costs little", label="Lip-sync score",
        choices=(("auto", "Automatic (on a GPU only)"), ("on", "On"), ("off", "Off")))
    landmarks: str = option(
        "auto", help="68 face points (FAN, 96 MB of weights) for the head's tilt, the mouth mask and the enhanced "
                     "face's alignment (auto: with S3FD when the file is at hand, for a still or on a GPU)",
        label="Face landmarks", choices=(("auto", "Automatic"), ("fan", "On (FAN)"), ("none", "Off")),
        aliases=(("on", "fan"), ("off", "none")))
    mask: str = option(
        "auto", help="the soft blend's shape: box (an oval in the face box), face (the lower face's outline) or "
                     "mouth (the lips), the last two from landmarks (auto: face where they are found, else box)",
        label="Mouth mask", choices=(("auto", "Automatic"), ("box", "Oval in the face box"),
                                     ("face", "Lower face (landmarks)"), ("mouth", "Lips only (landmarks)")))
    voice: str = option(
        "auto", help="the voice that speaks --text: auto (gTTS, else the natural offline voice, else espeak-ng), "
                     "gtts (Google's service only), piper (natural, on this machine) or espeak (espeak-ng, robotic)",
        label="Voice", choices=(("auto", "Google (online)"), ("piper", "Natural (on this machine)"),
                                ("espeak", "Robotic (espeak-ng)"), ("gtts", "Google only, no fallback")),
        aliases=(("google", "gtts"), ("natural", "piper"), ("espeak-ng", "espeak")))
    still_fps: float = 25.0
    # Limits for public use: whoever serves sets them, not a request. None: speech of any length (the app serves
    # with a limit of its own).
    max_audio_seconds: float | None = None
    max_text_chars: int = 2000
    max_image_pixels: int = 40_000_000
    max_upload_bytes: int = 500 * 1024 * 1024
    subprocess_timeout: float = 600.0

    def __post_init__(self) -> None:
        for name, declared in OPTIONS.items():
            if declared.choices:
                value = dict(declared.aliases).get(getattr(self, name), getattr(self, name))
                object.__setattr__(self, name, value)  # an alias is stored as the value it means
                if value not in declared.values:
                    raise OptionError(f"{name} must be one of {', '.join(declared.values)}, not {value!r}")
        if self.box is not None:
            top, bottom, left, right = self.box
            if not (0 <= top < bottom and 0 <= left < right):
                raise OptionError("box must be TOP BOTTOM LEFT RIGHT with top < bottom and left < right")
        if len(self.pads) != 4:
            raise OptionError("pads must be four numbers: TOP BOTTOM LEFT RIGHT")
        if self.face_index < ALL_FACES:
            raise OptionError("face_index must be 0 or more, or -1 for all faces")
        if self.landmarks == "none" and self.mask in LANDMARK_MASKS:
            raise OptionError(f"The {self.mask} mask follows the face's landmarks: choose landmarks auto or fan with "
                              f"it, or the box mask.")
        if self.box is not None and (self.landmarks == "fan" or self.mask in LANDMARK_MASKS):
            raise OptionError("Landmarks are found on the faces the finder finds, and a fixed face box skips "
                              "finding: leave the box empty, or choose landmarks auto with the box mask.")
        if self.output_size < 96 or self.still_fps <= 0 or self.batch_size < 0:
            raise OptionError("output_size must be at least 96, still_fps positive and batch_size not negative")
        if self.max_audio_seconds is not None and not self.max_audio_seconds > 0:
            raise OptionError("max_audio_seconds must be positive, or None for no limit")

    def capped_speech_seconds(self, seconds: float) -> float:
        """A speech length, no more than the limit: how long a request's video can be."""
        return seconds if self.max_audio_seconds is None else min(seconds, self.max_audio_seconds)

    def replace(self, **changes) -> "LipSyncConfig":
        return dataclasses.replace(self, **changes)


# The settings one request may choose, in the order the API lists them.
OPTIONS: dict[str, Option] = {item.name: item.metadata["option"] for item in dataclasses.fields(LipSyncConfig)
                              if "option" in item.metadata}
CHECKPOINT_NAMES = OPTIONS["checkpoint"].values
DETECTORS = OPTIONS["detector"].values
SMOOTHING = OPTIONS["smoothing"].values
BLENDS = OPTIONS["blend"].values
DEVICES = OPTIONS["device"].values
PRECISIONS = OPTIONS["precision"].values
ENHANCERS = OPTIONS["enhance"].values
