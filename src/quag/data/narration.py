"""HiREST-sim's narration: what the host of a how-to video says, written from its annotations.

The pseudo-transcript of a HiREST-sim video should read like a Whisper transcript of a real one, so that a model
that learns from it (a speech-only model above all) transfers to real videos. What the annotations give is the
query, the moment and the steps with their captions; the rest follows how hosts talk:

* **before the moment**: off-topic talk (a greeting, the channel, a story, another video's topic), sometimes the
  topic itself ("Today I'm going to show you how to make glitter tape."), with pauses;
* **in the moment**: each step is announced near its start (within +-1.5 s), in the first person or the
  imperative ("Okay, next I'm going to take a piece of white glitter tape."), steps that follow each other within
  one utterance are announced together; while a step goes on the host comments ("There we go."), repeats it
  ("Again, paste it on a sheet."), adds asides ("I got this at the dollar store.") or works in silence; some
  steps are not announced at all; a moment without steps is narrated with its query;
* **after the moment**: a recap, an outro ("Thanks so much for watching."), talk about the next video;
* fillers ("Um,", "So,", "Okay,") start a quarter of the utterances, and two utterances sometimes share a cue.

Cues are sentences, cased and punctuated like Whisper's, timed at 2.3-3.3 words per second. Everything is drawn
from the generator passed in, so a video's narration depends only on its seed (see :mod:`quag.data.sim`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from quag.data.annotations import VideoAnnotation
from quag.data.srt import Cue

GREETING = (
    "Hey guys, welcome back to my channel.",
    "Hi everyone, it's me again.",
    "What's up, everybody?",
    "Hello and welcome to another video.",
    "Hi, thanks for stopping by.",
)
"""The first words of a video (most of the time)."""
INTRO = (
    "So a lot of you asked me about this in the comments.",
    "Before we start, don't forget to like and subscribe.",
    "Quick word from today's sponsor.",
    "If you're new here, I post a new video every week.",
    "Let me tell you a little story first.",
    "I've been doing this for years now.",
    "It's been a crazy week, honestly.",
    "Okay, let's get right into it.",
    "Here's everything you're going to need.",
    "Make sure you watch until the end.",
)
TOPIC = (
    "Today I'm going to show you how to {q}.",
    "In this video we're going to {q}.",
    "So today we're going to learn how to {q}.",
    "This is how I {q}, it's really easy.",
    "I'll show you the way I {q}.",
)
FIRST = (
    "So first, {c}.",
    "The first thing you want to do is {c}.",
    "Let's get started. {C}.",
    "Okay, so the first thing I'm going to do is {c}.",
    "To start, {c}.",
    "First I'm going to {c}.",
)
NEXT = (
    "Now {c}.",
    "Next, you want to {c}.",
    "Okay, next I'm going to {c}.",
    "Then I'm just gonna {c}.",
    "What you want to do now is {c}.",
    "Go ahead and {c}.",
    "Alright, so now we're going to {c}.",
    "The next step is to {c}.",
    "I'm going to {c} now.",
    "Let's {c}.",
    "You're gonna {c}.",
    "And then {c}, like this.",
    "So I'm gonna {c} right here.",
    "Now we need to {c}.",
    "{C}.",
    "After that, {c}.",
    "Make sure you {c}.",
)
WHOLE = (
    "Okay, let's {c}.",
    "So now I'm going to {c}.",
    "Alright, let's {c}.",
    "Here's how you {c}.",
    "So what we're going to do is {c}.",
)
"""The start of a moment without annotated steps: ``{c}`` is the query."""
THEN = ("Then {c}.", "And {c}.", "{C}.", "And then {c}.", "Now {c}.")
"""A step announced in the same utterance as the one before it."""
AGAIN = (
    "Just keep going, {c}.",
    "Again, {c}.",
    "So I'm still going to {c}.",
    "You really want to {c} carefully.",
    "Keep trying to {c}.",
    "Yeah, just {c}.",
)
WORKING = (
    "Just like that.",
    "There we go.",
    "Like so.",
    "Nice and easy.",
    "You can see it right here.",
    "Take your time with this part.",
    "Keep going.",
    "Almost there.",
    "That looks good.",
    "You don't want to rush this.",
    "See how that looks?",
    "Perfect.",
    "Okay.",
    "A little bit more.",
    "That's what we want.",
    "Let me show you up close.",
    "Oops.",
    "See that?",
)
ASIDE = (
    "I got this at the dollar store.",
    "You can use whatever you have at home.",
    "This is my favorite part.",
    "If you don't have one, that's fine.",
    "Sorry, my hands are a little messy.",
    "I'll put a link down below.",
    "My kids love this.",
    "Hold on one second.",
    "Let me move the camera a little.",
    "Be careful with this.",
    "I learned this from my grandma.",
    "It doesn't have to be perfect.",
    "I always forget this part.",
    "You can skip this if you want.",
    "This one's a little tricky.",
)
OFF_TOPIC = (
    "In my last video I showed you how to {d}.",
    "Some people like to {d} first, but I don't.",
    "Next week I'll show you how to {d}.",
    "A lot of you asked me how to {d}.",
    "I'll do a separate video on how to {d}.",
)
"""Talk about another task: ``{d}`` is a step caption of another video."""
RECAP = (
    "And that's how you {q}.",
    "So that's how I {q}.",
    "And there you have it, that's how to {q}.",
)
RESULT = (
    "Look how nice that turned out.",
    "I'm really happy with how this came out.",
    "You can keep it for a couple of weeks.",
    "Let me give it a try.",
    "That's really good.",
    "It took me about an hour in total.",
    "Next time I might do it a little differently.",
)
"""Talk after the moment about what was made."""
OUTRO = (
    "And that's it.",
    "And there you have it.",
    "Thanks so much for watching.",
    "If you liked this video, give it a thumbs up.",
    "Let me know in the comments what you think.",
    "See you in the next one.",
    "Bye!",
    "I hope this was helpful.",
    "Don't forget to subscribe for more videos like this.",
)
FILLERS = ("Um, ", "Uh, ", "So, ", "Okay, ", "Alright, ", "And ", "Yeah, ", "Right, ", "Now, ")

ANNOUNCE_JITTER = 1.5
"""A step is announced within this many seconds of its start."""


def phrase(text: str) -> str:
    """A caption or query as a verb phrase inside a sentence, as speech is written: stripped, no final period,
    title-case words lowered (``Make a Plaster Mask`` -> ``make a plaster mask``), acronyms kept (``TBSP``)."""
    words = " ".join(text.split()).rstrip(".").split(" ")
    return " ".join(w.lower() if w[:1].isupper() and (len(w) == 1 or not w[1:].isupper()) else w for w in words)


def _fill(template: str, c: str = "", q: str = "", d: str = "") -> str:
    return template.format(c=c, C=c[:1].upper() + c[1:], q=q, d=d)


def _with_filler(text: str, rng: np.random.Generator) -> str:
    filler = FILLERS[rng.integers(len(FILLERS))]
    keep = text.startswith(("I ", "I'm", "I'll", "I've"))
    return filler + (text if keep else text[:1].lower() + text[1:])


def speaking_time(text: str, rng: np.random.Generator) -> float:
    """Seconds to say ``text`` at 2.3-3.3 words per second, at least 1.2 s."""
    return max(1.2, len(text.split()) / float(rng.uniform(2.3, 3.3)) + float(rng.uniform(0.2, 0.8)))


def _pick(bank: Sequence[str], rng: np.random.Generator) -> str:
    return bank[int(rng.integers(len(bank)))]


def narrate(video: VideoAnnotation, rng: np.random.Generator, silence: float, distractors: Sequence[str]) -> list[Cue]:
    """The transcript cues of one video (see the module docstring).

    Args:
        video: the annotation (query, duration, moment bounds, steps).
        rng: the video's own generator.
        silence: probability that a slot between announcements is a quiet pause (half of it: that a step goes
            unannounced).
        distractors: step captions of other videos, for off-topic talk.
    """
    duration = video.duration
    start, end = video.bounds
    q = phrase(video.query)
    # what is announced: the steps, or the whole moment under its query
    steps = [(s.start, s.end, phrase(s.caption)) for s in video.steps] or [(start, end, q)]
    due = [max(0.0, s + float(rng.uniform(-ANNOUNCE_JITTER, ANNOUNCE_JITTER))) for s, _, _ in steps]
    silent_step = [bool(rng.random() < silence / 2) for _ in steps]
    said: set[str] = set()
    cues: list[Cue] = []

    def other(t: float, current: int) -> str:
        """Something said at ``t`` between announcements; ``current`` = the step announced last (-1: none)."""
        r = float(rng.random())
        if t < start:
            if not said and r < 0.7:
                said.add("greeting")
                return _pick(GREETING, rng)
            said.add("greeting")
            if "topic" not in said and r < 0.25:
                said.add("topic")
                return _fill(_pick(TOPIC, rng), q=q)
            if distractors and r < 0.4:
                return _fill(_pick(OFF_TOPIC, rng), d=phrase(_pick(distractors, rng)))
            return _pick(INTRO, rng)
        if t >= end:
            if "recap" not in said and r < 0.3:
                said.add("recap")
                return _fill(_pick(RECAP, rng), q=q)
            if distractors and r < 0.4:
                return _fill(_pick(OFF_TOPIC, rng), d=phrase(_pick(distractors, rng)))
            return _pick(RESULT if r < 0.7 else OUTRO, rng)
        c = steps[max(current, 0)][2]
        if r < 0.2:
            return _fill(_pick(AGAIN, rng), c=c)
        if r < 0.45:
            return _pick(ASIDE, rng)
        if distractors and r < 0.5:
            return _fill(_pick(OFF_TOPIC, rng), d=phrase(_pick(distractors, rng)))
        return _pick(WORKING, rng)

    t, k = float(rng.uniform(0.0, 2.0)), 0  # k: the next step to announce
    while t < duration - 0.5:
        if k < len(steps) and due[k] <= t + 0.5:
            if silent_step[k]:  # the host works without a word
                k += 1
                continue
            bank = WHOLE if not video.steps else FIRST if k == 0 else NEXT
            text = _fill(_pick(bank, rng), c=steps[k][2])
            length = speaking_time(text, rng)
            k += 1
            while k < len(steps) and due[k] <= t + length and not silent_step[k]:  # announced in one breath
                text += " " + _fill(_pick(THEN, rng), c=steps[k][2])
                length = speaking_time(text, rng)
                k += 1
        else:
            wait = due[k] - t if k < len(steps) else math.inf
            if wait < 1.2 or rng.random() < silence:
                t = min(t + float(rng.uniform(1.0, 4.0)), t + wait)  # a pause, never past the next step
                continue
            text = other(t, k - 1)
            if rng.random() < 0.3:  # two sentences in one cue, as Whisper often segments
                second = other(t, k - 1)
                if second != text:
                    text += " " + second
            length = speaking_time(text, rng)
            if length > wait:  # keep the next announcement on time: say something short, or nothing
                text = _pick(WORKING, rng)
                length = speaking_time(text, rng)
                if length > wait:
                    t += wait
                    continue
        if rng.random() < 0.25:
            text = _with_filler(text, rng)
        stop = min(t + length, duration)
        # millisecond-precision times, as Whisper writes them
        cues.append(Cue(index=len(cues) + 1, start=round(t, 3), end=round(stop, 3), text=text))
        t = stop + float(rng.uniform(0.0, 0.8))
    return cues
