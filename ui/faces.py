"""The face preview: the photo (or the video) as uploaded, at once; then its first frame with the faces found,
numbered as 'Which face' counts them, their tags clear of each other; a click on a face chooses it. An answer for
settings changed since it was asked never lands over the newer one's."""

from __future__ import annotations

import mimetypes
from typing import Callable, Iterable

import cv2
import gradio as gr
import numpy as np

from lipsync import LipSyncConfig, LipSyncError, options, pipeline
from lipsync.config import ALL_FACES
from lipsync.errors import CheckpointError

from . import words
from .options import open_choices
from .serving import NewestQuestions

NUMBERED_FACES = 10  # the preview numbers at most this many faces, the largest
PREVIEW_SIZE = (480, 260)  # about the width and height the preview is shown at, in page pixels
TAG_HEIGHT = 16  # a number tag's text height as shown, in page pixels
# In the page, before each question to the preview: its last input, a hidden number, becomes the question's number,
# counted in the order the page asks (which the server cannot tell: the questions run side by side).
ASK = "(...values) => [...values.slice(0, -1), window.facesAsked = (window.facesAsked || 0) + 1]"
TAG = (0, 220, 0)  # RGB: the boxes and the number tags
Rect = tuple[int, int, int, int]  # x1, y1, x2, y2


def is_video(path: str | None) -> bool:
    return bool(path) and (mimetypes.guess_type(path)[0] or "").startswith("video/")


def face_choices(numbers: Iterable[int]) -> list[tuple[str, int]]:
    choices = [("0: the largest face", 0) if number == 0 else (str(number), number) for number in numbers]
    return choices + [("All faces", ALL_FACES)] if len(choices) > 1 else choices


def as_uploaded(face: str | None):
    """[video, preview, note, which face] at once on upload: a video plays, a photo shows as it is, before any
    face is found (and when none is); 'Which face' shows only with a face to count."""
    video, still = is_video(face), bool(face) and not is_video(face)
    return (gr.update(value=face if video else None, visible=video),
            gr.update(value=face if still else None, visible=still), "Looking for faces…" if face else "",
            gr.update(visible=bool(face)))


class Preview:
    """The faces found for each page's preview: only the answer to the page's newest question lands."""

    def __init__(self, quick_finder: str):
        self.quick_finder = quick_finder  # the words of the finder that needs no weights, for the hint
        self.asked = NewestQuestions()

    def find(self, face: str | None, settings: dict, defaults: LipSyncConfig, page: str, number: int):
        """[preview, which face, note, numbered boxes] for the page's question `number` (see ASK), or skips when
        the page asked a newer one while this one was being answered."""
        self.asked.ask(page, number)
        answer = self._answer(face, settings, defaults)
        return answer if self.asked.is_newest(page, number) else (gr.skip(),) * len(answer)

    def _answer(self, face: str | None, settings: dict, defaults: LipSyncConfig):
        only_the_first = gr.update(choices=face_choices(range(1)), value=0)
        if not face:
            return gr.update(value=None, visible=False), only_the_first, "", []
        try:
            frame, boxes = pipeline.find_faces(face, options.to_config(settings, defaults))
        except CheckpointError:  # the finder's weights: said by the setting, with what will do instead
            unusable = (f"⚠️ “{words.setting('s3fd')}” cannot be used yet: its weights are not here. Choose "
                        f"*Fast*, or the face finder *{self.quick_finder}*.")
            return gr.skip(), only_the_first, unusable, []
        except LipSyncError as exc:
            return gr.skip(), only_the_first, f"⚠️ {exc}", []
        numbered = sorted(sorted(range(len(boxes)), key=lambda n: -boxes[n].w * boxes[n].h)[:NUMBERED_FACES])
        picture = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # a copy: a video's decoded frame may be read-only
        height, width = picture.shape[:2]
        shown = [(number, boxes[number].bounds(width, height)) for number in numbered]
        draw_numbers(picture, shown)
        choices = gr.update(choices=face_choices(numbered), value=0) if numbered else only_the_first
        return gr.update(value=picture, visible=True), choices, note(len(boxes), len(numbered)), shown


def note(found: int, numbered: int) -> str:
    if not found:
        return ("⚠️ No face found here: try the other face finder, or a fixed face box under More options → "
                "Advanced.")
    click = " Click a face to choose it." if numbered > 1 else ""
    if found > numbered:
        return f"{found} faces found; the {numbered} largest are numbered, and {found - numbered} more are not.{click}"
    return f"{found} face{'s' if found != 1 else ''} found.{click}"


def picked(shown: list[tuple[int, Rect]], x: int, y: int) -> int | None:
    """The number of the face at (x, y) in the preview: the smallest box around the point, if any."""
    around = [(number, (x2 - x1) * (y2 - y1)) for number, (x1, y1, x2, y2) in shown if x1 <= x < x2 and y1 <= y < y2]
    return min(around, key=lambda item: item[1])[0] if around else None


def pick(shown: list, selected: gr.SelectData):
    """A click on the preview: 'Which face' becomes the face clicked (nothing changes off every face)."""
    number = picked(shown or [], *selected.index[:2])
    return gr.skip() if number is None else gr.update(value=number)


def _tag_size(number: int, scale: float, thickness: int) -> tuple[int, int, int]:
    (text_w, text_h), base = cv2.getTextSize(str(number), cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    return text_w + 2 * thickness, text_h + base + 2 * thickness, base


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def tag_places(shown: list[tuple[int, Rect]], sizes: list[tuple[int, int]], width: int, height: int) -> list[Rect]:
    """Where each face's number tag goes: above its box, else inside its top, below it, inside its bottom, or
    along its top edge, the first place inside the frame that no earlier tag covers."""
    placed: list[Rect] = []
    for (_, (x1, y1, x2, y2)), (tag_w, tag_h) in zip(shown, sizes):
        lefts = [x1] + list(range(x1 + tag_w, max(x1, x2 - tag_w) + 1, tag_w))
        tops = [y1 - tag_h, y1, y2, y2 - tag_h]
        candidates = [(left, top) for left in lefts for top in tops]
        inside = [(min(max(0, left), width - tag_w), min(max(0, top), height - tag_h)) for left, top in candidates]
        rects = [(left, top, left + tag_w, top + tag_h) for left, top in inside]
        placed.append(next((rect for rect in rects if not any(_overlaps(rect, other) for other in placed)),
                           rects[0]))
    return placed


def draw_numbers(picture: np.ndarray, shown: list[tuple[int, Rect]]) -> list[Rect]:
    """Boxes and number tags drawn on the picture (in place), sized to stay legible as the preview shrinks it;
    the tags' places."""
    height, width = picture.shape[:2]
    shrink = max(1.0, width / PREVIEW_SIZE[0], height / PREVIEW_SIZE[1])
    scale = TAG_HEIGHT * shrink / cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][1]
    thickness = max(2, round(2 * shrink))
    sizes = [_tag_size(number, scale, thickness) for number, _ in shown]
    places = tag_places(shown, [size[:2] for size in sizes], width, height)
    for (number, (x1, y1, x2, y2)), (left, top, right, bottom), (_, _, base) in zip(shown, places, sizes):
        cv2.rectangle(picture, (x1, y1), (x2, y2), TAG, thickness)
        cv2.rectangle(picture, (left, top), (right - 1, bottom - 1), TAG, cv2.FILLED)
        cv2.putText(picture, str(number), (left + thickness, bottom - base - thickness), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (0, 0, 0), thickness)
    return places


def section(defaults: LipSyncConfig) -> dict:
    """The preview of the uploaded face (hidden until there is one), and 'Which face' beside what it counts."""
    with gr.Row():
        face_video = gr.Video(label="Your video", interactive=False, visible=False, height=PREVIEW_SIZE[1],
                              elem_id="face-video")
        preview = gr.Image(show_label=False, interactive=False, visible=False, height=PREVIEW_SIZE[1],
                           buttons=["fullscreen"], elem_id="face-preview", scale=2)
        with gr.Column(min_width=160):
            face_index = open_choices(gr.Dropdown(face_choices(range(1)), value=defaults.face_index,
                                                  label="Which face", allow_custom_value=True, visible=False,
                                                  elem_id="which-face",
                                                  info="As numbered in the preview; 0 is the largest."))
            faces_note = gr.Markdown(elem_id="faces-note")
    return {"face_video": face_video, "preview": preview, "face_index": face_index, "faces_note": faces_note,
            "shown": gr.State([]),  # the numbered faces in the preview, for a click on one
            "asked": gr.Number(visible=False)}  # the question's number, set by ASK


def wire(face: gr.File, parts: dict, finder: list[gr.components.Component], find: Callable) -> None:
    """On upload the face shows at once, then the faces found in it (again when the finder's settings change);
    a click on a face chooses it."""
    uploaded = face.change(as_uploaded, face, [parts[name] for name in ("face_video", "preview", "faces_note",
                                                                        "face_index")],
                           queue=False, api_name=False, show_progress="hidden")
    triggers = [uploaded.then] + [setting.submit if isinstance(setting, gr.Textbox) else setting.change
                                  for setting in finder]
    for trigger in triggers:
        trigger(find, [face, *finder, parts["asked"]], [parts[name] for name in ("preview", "face_index",
                                                                                  "faces_note", "shown")],
                js=ASK, trigger_mode="multiple", api_name=False, concurrency_limit=4)  # each question runs
    parts["preview"].select(pick, parts["shown"], parts["face_index"], queue=False, api_name=False,
                            show_progress="hidden")
