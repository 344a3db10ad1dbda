"""The options: presets first (Fast / Balanced / Enhanced face), every setting folded below them, in the page's
words with the API's values, and the hints that say which settings' weights are not at hand."""

from __future__ import annotations

from typing import Callable

import gradio as gr

from lipsync import options
from lipsync.config import CHECKPOINT_NAMES, OPTIONS, OUTPUT_SIZES, LipSyncConfig
from lipsync.errors import OptionError
from lipsync.nets import checkpoints

from . import words
from .serving import WeightsWatch

DEFAULTS = options.DEFAULTS
# Choices in words; the API takes the values on the right, as the config names them.
MODELS, FINDERS, SMOOTHING, BLENDS, PRECISIONS, ENHANCERS = (
    options.page_choices(name) for name in ("checkpoint", "detector", "smoothing", "blend", "precision", "enhance"))
SIZES = [(f"Keep (up to {DEFAULTS.output_size}p)", DEFAULTS.output_size)] + [
    (f"{size}p", size) for size in OUTPUT_SIZES if size < DEFAULTS.output_size]
FAST_SIZE = 720
PRESET_SETTINGS = ("detector", "output_size", "enhance")  # what a preset sets; the rest keep their values
PRESET_INFO = ("Fast: the quick face finder, up to 720p. Balanced: the accurate finder; the face enhanced on a GPU. "
               "Enhanced face: always enhanced (slow on a CPU).")
FINDER_INFO = "Accurate finds turned and small faces; Quick is enough for a clear frontal face."
ENHANCE_INFO = "GFPGAN redraws the face sharper: quick on a GPU, but seconds a frame on a CPU."
MODEL_INFO = "The sharper one draws a crisper mouth; the other follows the sound a little more closely."
PRECISION_INFO = ("Exact is fp32; Fast is bf16, or fp16 on a GPU: quicker, and all but the same. Automatic takes "
                  "fp16 on a GPU, bf16 on a CPU that does it natively, else fp32.")


def presets(defaults: LipSyncConfig) -> dict[str, dict]:
    """Each preset's settings; Balanced is what the server serves by default."""
    served = {name: getattr(defaults, name) for name in PRESET_SETTINGS}
    return {"Fast": {"detector": "haar", "output_size": min(FAST_SIZE, defaults.output_size), "enhance": "none"},
            "Balanced": served, "Enhanced face": {**served, "enhance": "gfpgan"}}


def preset_of(defaults: LipSyncConfig, detector: str, output_size, enhance: str) -> str | None:
    """The preset these settings are, or None (the radio then shows none chosen)."""
    try:
        chosen = {"detector": detector, "output_size": options.short_side(output_size), "enhance": enhance}
    except OptionError:
        return None
    return next((name for name, settings in presets(defaults).items() if settings == chosen), None)


def open_choices(component: gr.components.Component) -> gr.components.Component:
    """Let a choice hand any value on: one outside its choices (only the API can send one) is then refused by
    lipsync.options in the app's own words, instead of by Gradio with a traceback in the server log; and a file
    of any type reaches the pipeline, which says what is wrong with it. (Per instance: a subclass would make
    Gradio write an app.pyi stub beside app.py.)"""
    if isinstance(component, gr.File):
        component.preprocess = lambda payload: None if payload is None else payload.path
    else:
        component.preprocess = lambda payload: payload
    return component


def preset_radio(defaults: LipSyncConfig) -> gr.Radio:
    return gr.Radio(list(presets(defaults)), value="Balanced", label="How", info=PRESET_INFO, elem_id="preset")


def options_panel(defaults: LipSyncConfig) -> dict[str, gr.components.Component]:
    """Every setting but the face number (it sits by the preview), folded under More options; the technical ones
    under Advanced. Keyed as the API names them."""
    with gr.Accordion("More options", open=False, elem_id="options"):
        with gr.Row():
            detector = gr.Radio(FINDERS, value=defaults.detector, label=OPTIONS["detector"].label,
                                info=FINDER_INFO, elem_id="detector")
            enhance = gr.Radio(ENHANCERS, value=defaults.enhance, label=OPTIONS["enhance"].label, info=ENHANCE_INFO,
                               elem_id="enhance")
        with gr.Row():
            output_size = gr.Dropdown(SIZES, value=defaults.output_size, label=OPTIONS["output_size"].label,
                                      allow_custom_value=True, elem_id="output-size",
                                      info="Smaller is quicker; smaller inputs keep their own size.")
            checkpoint = gr.Dropdown(MODELS, value=defaults.checkpoint, label=OPTIONS["checkpoint"].label,
                                     info=MODEL_INFO, elem_id="model")
        with gr.Row():
            color_match = gr.Checkbox(value=defaults.color_match, label=OPTIONS["color_match"].label,
                                      info="The new mouth takes the colour of the face around it.")
            keep_silence = gr.Checkbox(value=defaults.keep_silence, label=OPTIONS["keep_silence"].label,
                                       info="The mouth rests while nobody speaks.")
            align_roll = gr.Checkbox(value=defaults.align_roll, label=OPTIONS["align_roll"].label,
                                     info="The model sees the head upright; the mouth is turned back to fit.")
        advanced = _advanced_options(defaults)
    for choice in (detector, checkpoint, enhance, output_size):
        open_choices(choice)
    return {"checkpoint": checkpoint, "detector": detector, "output_size": output_size, "color_match": color_match,
            "keep_silence": keep_silence, "align_roll": align_roll, "enhance": enhance, **advanced}


def _advanced_options(defaults: LipSyncConfig) -> dict[str, gr.components.Component]:
    """The technical settings, folded once more."""
    with gr.Accordion("Advanced", open=False, elem_id="advanced"):
        with gr.Row():
            pads = gr.Textbox(options.as_text(defaults.pads), label=OPTIONS["pads"].label,
                              info=f"Top bottom left right; more at the bottom takes in the chin. Empty: "
                                   f"{options.as_text(defaults.pads)}.")
            box = gr.Textbox("", label=OPTIONS["box"].label,
                             info="Top bottom left right; skips face finding. Empty: find the face.")
        with gr.Row():
            smoothing = gr.Radio(SMOOTHING, value=defaults.smoothing, label=OPTIONS["smoothing"].label,
                                 info="Takes the jitter out of the box from frame to frame.")
            blend = gr.Radio(BLENDS, value=defaults.blend, label=OPTIONS["blend"].label,
                             info="A soft edge hides the seam around the new mouth.")
            precision = gr.Radio(PRECISIONS, value=defaults.precision, label=OPTIONS["precision"].label,
                                 info=PRECISION_INFO, elem_id="precision")
        with gr.Row():
            landmarks = gr.Radio(options.page_choices("landmarks"), value=defaults.landmarks,
                                 label=OPTIONS["landmarks"].label, elem_id="landmarks",
                                 info="68 points on the face: the tilt, the mask's shape and the enhanced face's "
                                      "placement. Automatic: with the accurate finder, on a photo or a GPU.")
            mask = gr.Radio(options.page_choices("mask"), value=defaults.mask, label=OPTIONS["mask"].label,
                            elem_id="mask", info="The shape the new mouth is blended through; the lower face "
                                                 "and the lips need landmarks.")
            score = gr.Radio(options.page_choices("score"), value=defaults.score, label=OPTIONS["score"].label,
                             elem_id="score", info="SyncNet's confidence that the lips match the sound (higher "
                                                   "is better), shown with the result.")
    for choice in (precision, smoothing, blend, landmarks, mask, score):
        open_choices(choice)
    return {"pads": pads, "smoothing": smoothing, "blend": blend, "box": box, "precision": precision,
            "landmarks": landmarks, "mask": mask, "score": score}


def hints(weights: WeightsWatch) -> list[dict]:
    """The hints of [preset, face finder, enhance, model], each telling of its choices' weights not at hand."""
    def told(base: str, *names: str, what: str | None = None) -> str:
        return " ".join([base, *filter(None, (words.weights_hint(name, weights, what) for name in names))])

    return [gr.update(info=told(PRESET_INFO, checkpoints.ENHANCER, what="Enhanced face")),
            gr.update(info=told(FINDER_INFO, "s3fd")),
            gr.update(info=told(ENHANCE_INFO, checkpoints.ENHANCER)), gr.update(info=told(MODEL_INFO,
                                                                                         *CHECKPOINT_NAMES))]


def wire_presets(preset: gr.Radio, chosen: dict, defaults: Callable[[], LipSyncConfig]) -> None:
    """A preset sets its settings; a setting changed by hand shows the preset it now makes, or none."""
    settings = [chosen[name] for name in PRESET_SETTINGS]
    preset.input(lambda name: [presets(defaults())[name][setting] for setting in PRESET_SETTINGS], preset, settings,
                 queue=False, api_name=False, show_progress="hidden")
    gr.on([setting.input for setting in settings], lambda *values: preset_of(defaults(), *values), settings, preset,
          queue=False, api_name=False, show_progress="hidden")
