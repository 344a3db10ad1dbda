"""What the page says: the progress, the status of a finished request, the estimate before one, the weights banner,
the hints of settings whose weights are missing, and the languages. Sentences only: no components here."""

from __future__ import annotations

import html

from lipsync import Result, pipeline
from lipsync.config import OPTIONS, LipSyncConfig
from lipsync.nets import checkpoints
from lipsync.speech import tts

from .serving import WeightsWatch

# The words the page shows for each of the pipeline's stages.
STAGE_LABELS = {pipeline.Stage.SPEECH: "Preparing the speech", pipeline.Stage.DETECT: "Finding the face",
                pipeline.Stage.GENERATE: "Moving the lips",
                pipeline.Stage.ENHANCE: "Moving the lips and enhancing the face",
                pipeline.Stage.ENCODE: "Writing the video"}
BUSY = "Already making a video: wait for it to finish, or press Stop to start again."
STOPPED = "⏹️ Stopped: the video was not finished, and nothing of it was kept."
# The setting, and its value, that needs each checkpoint.
NEEDED_BY = {**{name: ("checkpoint", name) for name in OPTIONS["checkpoint"].values}, "s3fd": ("detector", "s3fd"),
             checkpoints.ENHANCER: ("enhance", "gfpgan")}


def progress(stage: pipeline.Stage, seconds: float) -> str:
    """The stage, and the time since the request started (Gradio's own counter restarts with each preview segment,
    so the page hides it)."""
    return f"{STAGE_LABELS[stage]} · {seconds:.0f} s"


def status(result: Result, expected: float | None, still: bool) -> str:
    """One line on a finished request: the video, how the mouth moved, the time it took, the voice."""
    parts = [f"{result.duration:.1f} s, {result.frames} frames at {result.fps:g} fps, {result.width}×{result.height}"]
    rested = result.frames - result.synced_frames
    if rested:
        parts.append(f"the mouth rested during the silences ({rested} frames)" if still else
                     f"the mouth was left as filmed in {rested} frames (silences, or no face in view)")
    if result.landmark_frames:
        parts.append(f"faces placed by landmarks in {result.landmark_frames} frames")
    if result.score is not None:
        parts.append(result.score.in_words())
    parts.append(f"made in {result.seconds:.1f} s" + (f", estimated {expected:.0f} s" if expected is not None else ""))
    if result.tts_engine:
        parts.append(voice_used(result.tts_engine, result.tts_skipped))
    return " · ".join(parts)


VOICE_WORDS = {"gTTS": "the Google voice (gTTS)", "Piper": "the natural offline voice (Piper)",
               "espeak-ng": "the robotic offline voice (espeak-ng)"}


def voice_used(engine: str, skipped: tuple[tts.SkippedVoice, ...]) -> str:
    """Which voice spoke, and why not the ones before it in the order, in words rather than exception texts."""
    if not skipped:
        return f"voice: {VOICE_WORDS[engine]}"
    why = {"gTTS": lambda voice: ("gTTS turned the request away (too many requests)" if voice.rate_limited
                                  else "gTTS could not be reached"),
           "Piper": lambda voice: "the natural voice's file was not at hand"}
    return f"voice: {' and '.join(why[voice.engine](voice) for voice in skipped)}, so {VOICE_WORDS[engine]} was used"


def estimate(seconds: float, measured: bool, frames: int, device: str, cores: int | None) -> str:
    where = "this GPU" if device == "cuda" else f"this computer's CPU ({cores} cores)"
    basis = ("at the speed of the last requests like this one" if measured
             else "a first guess until a request like this one has run here")
    return f"Estimate: about {max(1, round(seconds))} s on {where} for {frames} frames ({basis})."


def languages() -> list[tuple[str, str]]:
    """gTTS's languages as (words, code): those with a natural offline voice say so, and those with no offline
    voice at all need gTTS's service, and say that."""
    natural = set(tts.piper.natural_languages())

    def kind(code: str) -> str:
        return ", natural voice" if code in natural else "" if tts.espeak_voice(code) else ", online only"

    return [(f"{name} ({code}){kind(code)}", code) for code, name in tts.languages().items()]


def setting(name: str) -> str:
    """How the page names the setting that needs a checkpoint: its label and the choice, as shown."""
    option, value = NEEDED_BY[name]
    return f"{OPTIONS[option].label}: {dict(OPTIONS[option].choices)[value]}"


def _size(name: str) -> str:
    return f"{checkpoints.REGISTRY[name].size / 1e6:.0f} MB"


def weights_hint(name: str, weights: WeightsWatch, what: str | None = None) -> str:
    """'' when the checkpoint is at hand; else what choosing it (`what`, by default the setting that needs it)
    means: a download on first use, or not here."""
    if weights.present(name):
        return ""
    what = what or setting(name)
    if weights.folder.path is None and name not in weights.missing:
        return f"{what} needs a {_size(name)} download on first use."
    return f"{what} is not available here: its weights are not installed."


def needs_weights(config: LipSyncConfig, weights: WeightsWatch) -> str | None:
    """The sentence for a request that failed on a checkpoint it chose, by the setting that chose it."""
    absent = weights.absent_for(config)
    if not absent:
        return None
    names = " and ".join(f"“{setting(name)}”" for name in absent)
    return (f"{names} cannot be used: this server does not have {'its' if len(absent) == 1 else 'their'} weights. "
            f"Choose another setting, or ask whoever runs the server to add them.")


def banner(weights: WeightsWatch, quick_finder: str) -> str:
    """A short, styled sentence for a visitor, with the details for whoever runs the server folded below; ''
    when nothing stands in the way."""
    if weights.blocking:
        sentence = "<strong>Nothing can be made yet:</strong> this server is still missing its model weights."
    elif "s3fd" in weights.missing:
        sentence = (f"<strong>The accurate face finder is not available yet:</strong> choose <em>Fast</em>, or the "
                    f"face finder <em>{html.escape(quick_finder)}</em> under More options.")
    elif not weights.checked.is_set():
        return ('<div class="banner wait">⏳ Fetching the model weights (about 0.5 GB, once); the first video waits '
                'for them.</div>')
    else:
        return ""
    return f'<div class="banner">⚠️ {sentence}{_details(weights)}</div>'


def _details(weights: WeightsWatch) -> str:
    folder = weights.folder.path
    rows = []
    for name in weights.absent:
        spec = checkpoints.REGISTRY[name]
        broken = name in weights.missing and folder is not None and (folder / spec.local_name).is_file()
        why = weights.missing[name] if broken else f"from the Hugging Face Hub: {spec.repo_id}, {spec.filename}"
        rows.append(f"<li><code>{spec.local_name}</code> ({_size(name)}, for {html.escape(setting(name))}): "
                    f"{html.escape(why)}</li>")
    where = (f"not in the checkpoint folder <code>{html.escape(str(folder))}</code>" if folder else
             "they could not be fetched from the Hugging Face Hub")
    return (f"<details><summary>For whoever runs this server</summary><p>Missing files ({where}):</p>"
            f"<ul>{''.join(rows)}</ul><p>Put them in a folder and start the app with "
            f"<code>--checkpoint-dir FOLDER</code>; the page takes them up without a restart.</p></details>")
