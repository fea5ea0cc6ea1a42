"""Utterance templates for the scene sampler: what people in a scene say.

Every function draws only from the :class:`numpy.random.Generator` it is given, so the same
seed gives the same text. Templates have slots (``{thing}``, ``{time}`` ...) filled from word
lists, so the families below produce hundreds to thousands of distinct sentences each, and
sampled scenes rarely repeat a line. All text is plain lower-case English with numbers spelled
out, which espeak-ng pronounces well.

The wake word is ``chime``. The invariants the annotations rely on:

- :func:`chitchat` (people talking to each other) never contains the wake word;
- :func:`tv_line` contains a wake phrase exactly when ``with_wake`` is true (and is still never
  addressed to the assistant: TV speech must be ignored);
- :func:`wake_request`, :func:`command`, :func:`monitoring_request` and :func:`split_turn`
  are addressed to the assistant and start with a wake phrase.

:func:`contains_wake_phrase` is the one test of whether a text mentions the wake word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from chimein.errors import SpecError

__all__ = [
    "WAKE_PHRASES",
    "WAKE_WORD",
    "Utterance",
    "chitchat",
    "command",
    "contains_wake_phrase",
    "monitoring_request",
    "split_turn",
    "tv_line",
    "wake_request",
]

WAKE_WORD = "chime"
WAKE_PHRASES: tuple[str, ...] = (
    "hey chime", "okay chime", "chime", "hi chime", "hello chime", "excuse me chime",
)
"""Ways the user addresses the assistant; every one contains :data:`WAKE_WORD`."""

_WAKE_RE = re.compile(rf"\b{WAKE_WORD}\b", re.IGNORECASE)


def contains_wake_phrase(text: str) -> bool:
    """Whether ``text`` mentions the wake word as a word (``chime``, not ``chimes``).

    Examples
    --------
    >>> contains_wake_phrase("okay chime, play some jazz"), contains_wake_phrase("wind chimes")
    (True, False)
    """
    return _WAKE_RE.search(text) is not None


@dataclass(frozen=True)
class Utterance:
    """One line of speech and what it means for the annotations.

    ``addressed``: directed at the assistant (a turn it should answer). ``intent``: one of
    ``request``, ``command``, ``chitchat``, ``media``, ``monitoring``. ``contains_wake``: the
    text mentions the wake word (true for TV lines that must be ignored too). ``target``: the
    monitored event phrase of a ``monitoring`` request, else empty.
    """

    text: str
    addressed: bool
    intent: str
    contains_wake: bool
    target: str = ""


# ------------------------------------------------------------------------------------------
# Slot vocabularies (numbers spelled out; no word here contains the wake word)
# ------------------------------------------------------------------------------------------
_SLOTS: dict[str, tuple[str, ...]] = {
    "day": ("today", "tomorrow", "tonight", "this weekend", "on saturday", "on monday",
            "this afternoon", "tomorrow morning", "on friday evening"),
    "weekday": ("tomorrow", "on saturday", "on sunday", "on monday", "on wednesday",
                "every weekday"),
    "place": ("london", "paris", "here", "the office", "my mum's place", "edinburgh",
              "new york", "the beach", "berlin", "the airport"),
    "minutes": ("five minutes", "ten minutes", "fifteen minutes", "twenty minutes",
                "half an hour", "forty five minutes", "an hour", "two minutes", "three minutes",
                "twelve minutes"),
    "clock": ("six", "seven thirty", "half past eight", "nine in the morning", "noon",
              "quarter to five", "ten tonight", "six fifteen", "eleven", "two in the afternoon"),
    "task": ("call mum", "take the bins out", "water the plants", "pick up the kids",
             "book the dentist", "pay the electricity bill", "buy milk", "feed the cat",
             "send the report", "charge my phone", "check the post", "walk the dog"),
    "item": ("milk", "eggs", "bread", "coffee", "washing up liquid", "bananas", "rice",
             "olive oil", "dog food", "tea bags", "apples", "cheese"),
    "music": ("some jazz", "my morning playlist", "the radio", "something relaxing",
              "the latest news podcast", "classical music", "some nineties pop",
              "rain sounds", "the top forty", "my workout mix"),
    "room": ("the kitchen", "the living room", "the bedroom", "the hallway", "the study",
             "the bathroom", "the garden"),
    "device": ("lights", "heating", "fan", "lamp", "radiator", "porch light", "tv"),
    "person": ("mum", "dad", "grandma", "sam", "alex", "jamie", "the school", "my sister",
               "the plumber", "priya"),
    "topic": ("the tallest mountain in europe", "how far away the moon is",
              "who wrote pride and prejudice", "how many ounces are in a pound",
              "the capital of australia", "how long to boil an egg", "what a leap year is",
              "how tall a giraffe is", "when the next full moon is", "how to say thank you in "
              "japanese"),
    "level": ("twenty", "thirty", "forty", "fifty", "sixty", "seventy"),
    "temp": ("nineteen", "twenty", "twenty one", "twenty two", "eighteen"),
    "name": ("sam", "alex", "jamie", "chris", "priya", "tom", "lucy", "ben", "maya", "joe"),
    "food": ("pasta", "curry", "pizza", "soup", "fish and chips", "a salad", "tacos",
             "a roast", "stir fry", "sandwiches"),
    "thing": ("the car keys", "my glasses", "the remote", "your jacket", "the charger",
              "the umbrella", "my wallet", "the scissors"),
    "show": ("the match", "that baking show", "the news", "the new series", "the quiz",
             "the film", "the documentary"),
    "activity": ("go for a walk", "visit grandma", "clean the garage", "watch a film",
                 "go swimming", "have a barbecue", "paint the fence", "go to the market"),
    "brand": ("sunny valley", "fresh field", "northwind", "bright spark", "golden crust",
              "blue harbour"),
    "product": ("orange juice", "mattress", "phone plan", "car insurance", "breakfast cereal",
                "running shoes", "washing powder", "family car"),
    "city": ("manchester", "leeds", "glasgow", "bristol", "cardiff", "york", "oxford"),
    "team": ("united", "rovers", "city", "the lions", "the eagles", "athletic"),
    "score": ("two one", "one nil", "three all", "two nil", "nil nil", "four two"),
    "weather": ("heavy rain", "strong winds", "sunny spells", "fog", "light showers",
                "a hard frost", "thunderstorms"),
}

_REQUESTS: tuple[str, ...] = (
    "what's the weather {day}",
    "what's the weather like in {place} {day}",
    "will it rain {day}",
    "do i need an umbrella {day}",
    "what time is it",
    "what's on my calendar {day}",
    "how long will it take to get to {place}",
    "i'd like to know {topic}",
    "can you tell me {topic}",
    "do you know {topic}",
    "what's the news this morning",
    "how's the traffic to {place}",
    "what should i make for dinner",
    "how do i make {food}",
    "is there anything on my shopping list",
    "when is my next meeting",
    "what's the score in the {city} game",
    "how many minutes are left on my timer",
    "what's the temperature outside",
    "can you find a recipe for {food}",
    "what's a good film to watch {day}",
    "who called me earlier",
    "spell the word necessary",
    "how do you convert cups to grams",
    "when does the shop close {day}",
    "remind me what i have to do {day}",
    "any messages from {person}",
    "is the {device} still on in {room}",
)

_COMMANDS: tuple[str, ...] = (
    "set a timer for {minutes}",
    "set an alarm for {clock}",
    "wake me up at {clock} {weekday}",
    "remind me to {task} at {clock}",
    "remind me to {task} in {minutes}",
    "add {item} to the shopping list",
    "put {item} on my shopping list",
    "play {music}",
    "play {music} in {room}",
    "turn off the {device} in {room}",
    "turn on the {device} in {room}",
    "dim the lights in {room} to {level} percent",
    "set the volume to {level} percent",
    "set the heating to {temp} degrees",
    "call {person}",
    "send a message to {person} saying i'm running late",
    "text {person} that dinner is at {clock}",
    "cancel my {clock} alarm",
    "stop the timer",
    "pause the music",
    "skip this song",
    "turn it up a bit",
    "start a {minutes} timer for the pasta",
    "lock the front door",
    "switch off everything in {room}",
    "read me my messages",
    "order more {item}",
    "snooze the alarm for {minutes}",
)

_CHITCHAT: tuple[str, ...] = (
    "have you seen {thing}",
    "i think i left {thing} in {room}",
    "what do you want for dinner, {food}",
    "shall we have {food} tonight",
    "did you remember to {task}",
    "can you {task} later",
    "i'll {task} after lunch",
    "do you want to {activity} {day}",
    "we could {activity} if the weather holds",
    "{name} said they'd come round {day}",
    "did {name} ever call you back",
    "i can't believe {show} ended like that",
    "are you watching {show} {day}",
    "we're out of {item} again",
    "could you grab some {item} on the way home",
    "it's freezing in {room}",
    "who left the {device} on",
    "the traffic to {place} was terrible",
    "how was work",
    "i'm so tired, i barely slept",
    "mind the step, it's slippery",
    "that smells amazing, what is it",
    "is it my turn to cook",
    "pass me the salt, please",
    "i'll be back in {minutes}",
    "let's leave at {clock}",
    "the kids need picking up at {clock}",
    "did you hear about {name}'s new job",
    "we should really {activity} more often",
    "honestly, i don't mind, you choose",
    "where did you put {thing}",
    "remind me to {task}, will you",
    "my back is killing me today",
    "did you lock the car",
    "the forecast says {weather} {day}",
    "i'll put the kettle on",
    "can you turn the {device} down a bit",
    "{name} and i might {activity} {day}",
    "i saw {name} in {place} last week",
    "what time does {name} get back from {place}",
    "don't forget we're having {food} with {name} {day}",
)

_TV_PLAIN: tuple[str, ...] = (
    "and now the weather for the week ahead, expect {weather} in {city}",
    "good evening and welcome to the six o'clock news",
    "police in {city} are asking for witnesses after a break in on tuesday",
    "and it finishes {score} here this afternoon, a great result for {team}",
    "coming up after the break, we meet the family who built their own house",
    "try new {brand} {product}, now with even more flavour",
    "{brand} {product}, because you deserve the best",
    "the prime minister is expected to make a statement later today",
    "stay tuned for the final of {show}",
    "traffic is building on the ring road around {city}",
    "scientists say the discovery could change how we think about the ocean",
    "in tonight's episode, a secret from the past comes back to haunt them",
    "that was the latest single from the band, and you're listening to the drive time show",
    "shares fell sharply this morning as markets reacted to the news",
    "the match kicks off at {clock}, with {team} hoping to stay top of the league",
    "i never meant to hurt you, you have to believe me",
    "get out of the house, now, before it's too late",
    "call now and get your first month free",
    "and the winner of tonight's quiz is, after the break",
    "here's a look at what's coming up on the late show",
    "more {weather} is expected overnight across the north",
    "our reporter is live in {city} with the latest",
    "this programme contains scenes some viewers may find upsetting",
    "{brand} {product}, now half price in every store in {city}",
    "tomorrow in {city}, {weather} clearing by the afternoon",
    "the mayor of {city} has promised new buses by the spring",
    "{team} travel to {city} {day} needing a win",
    "fans of {show} are in for a surprise this week",
    "you're listening to the breakfast show, it's {clock} and here's the traffic",
)

_TV_WAKE: tuple[str, ...] = (
    "just say {wake}, play {music}, and enjoy",
    "with the new {brand} speaker, just say {wake}, what's the weather",
    "{wake}, turn on the {device}, it's that easy",
    "ask {wake} to add {item} to your list, only at {brand}",
    "the company behind chime announced record sales this quarter",
    "in tonight's sketch, a man keeps shouting {wake} at his fridge",
    "{wake}, set a timer for {minutes}, said the chef on the cooking show",
    "reviewers say chime is the friendliest home assistant yet",
    "say {wake}, order more {item}, and it arrives tomorrow",
    "on the radio: {wake} is now available in {city}",
    "the detective turned and said, {wake}, call {person}",
    "our tech expert asked chime to tell us {topic}",
)

_WAKE_SEPARATORS: tuple[str, ...] = (", ", " ", ", um, ", ", uh, ")

_SPLIT_OPENERS: tuple[str, ...] = (
    "can you", "could you", "i need you to", "would you", "please", "i want you to",
)
_SPLIT_FILLERS: tuple[str, ...] = ("um,", "uh,", "hmm,", "let me think,", "oh and", "wait,", "so")
_SPLIT_BODIES: tuple[tuple[str, str], ...] = (
    ("remind me to", "{task} at {clock}"),
    ("set a timer", "for {minutes}"),
    ("add", "{item} to the shopping list"),
    ("play", "{music} in {room}"),
    ("turn off", "the {device} in {room}"),
    ("send a message to {person}", "saying i'm on my way"),
    ("tell me", "{topic}"),
    ("call", "{person} at {clock}"),
    ("wake me up", "at {clock} {weekday}"),
    ("check the weather", "in {place} {day}"),
)

# Monitoring: phrase used for a bare event-class label, and the request templates.
_EVENT_PHRASES: Mapping[str, str] = {
    "washer_done": "the washing machine finishes",
    "washing_machine": "the washing machine finishes",
    "dryer_done": "the dryer finishes",
    "dishwasher_done": "the dishwasher finishes",
    "microwave_done": "the microwave is done",
    "oven_done": "the oven is ready",
    "oven_timer": "the oven timer goes off",
    "kettle_whistle": "the kettle boils",
    "doorbell": "someone rings the doorbell",
    "door_knock": "someone knocks at the door",
    "phone_ring": "the phone rings",
    "baby_cry": "the baby wakes up",
    "toaster_pop": "the toast is ready",
    "smoke_alarm": "the smoke alarm goes off",
    "dog_bark": "the dog starts barking",
    "timer_beep": "the timer goes off",
}
_MONITOR: tuple[str, ...] = (
    "tell me when {event}",
    "let me know when {event}",
    "can you tell me when {event}",
    "give me a shout when {event}",
    "please let me know as soon as {event}",
    "keep an ear out and tell me when {event}",
    "i'm going upstairs, tell me if {event}",
    "i'll be in the garden, let me know when {event}",
    "listen out for me and say something when {event}",
    "could you keep track and tell me when {event}",
    "i've got my headphones on, so tell me when {event}",
    "remind me when {event}",
)


# ------------------------------------------------------------------------------------------
# Filling
# ------------------------------------------------------------------------------------------
_SLOT_RE = re.compile(r"\{(\w+)\}")


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _fill(rng: np.random.Generator, template: str, extra: Mapping[str, str] | None = None) -> str:
    """Fill ``{slot}`` placeholders left to right, one draw per slot occurrence."""

    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if extra is not None and key in extra:
            return extra[key]
        return _pick(rng, _SLOTS[key])

    return _SLOT_RE.sub(one, template)


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise SpecError(f"templates: field 'rng': need a numpy.random.Generator "
                        f"(np.random.default_rng(seed)), got {type(rng).__name__}")
    return rng


def _addressed_text(rng: np.random.Generator, body: str) -> str:
    return _pick(rng, WAKE_PHRASES) + _pick(rng, _WAKE_SEPARATORS) + body


# ------------------------------------------------------------------------------------------
# Public functions
# ------------------------------------------------------------------------------------------
def wake_request(rng: np.random.Generator) -> Utterance:
    """A wake phrase followed by a question or request, e.g. "hey chime, will it rain today".

    Examples
    --------
    >>> u = wake_request(np.random.default_rng(0))
    >>> u.addressed, u.intent, contains_wake_phrase(u.text)
    (True, 'request', True)
    """
    rng = _check_rng(rng)
    text = _addressed_text(rng, _fill(rng, _pick(rng, _REQUESTS)))
    return Utterance(text=text, addressed=True, intent="request", contains_wake=True)


def command(rng: np.random.Generator) -> Utterance:
    """A wake phrase followed by a command, e.g. "chime, set a timer for ten minutes"."""
    rng = _check_rng(rng)
    text = _addressed_text(rng, _fill(rng, _pick(rng, _COMMANDS)))
    return Utterance(text=text, addressed=True, intent="command", contains_wake=True)


def chitchat(rng: np.random.Generator) -> Utterance:
    """People talking to each other; never addresses the assistant, never says the wake word.

    Examples
    --------
    >>> u = chitchat(np.random.default_rng(3))
    >>> u.addressed, u.intent, u.contains_wake
    (False, 'chitchat', False)
    """
    rng = _check_rng(rng)
    text = _fill(rng, _pick(rng, _CHITCHAT))
    return Utterance(text=text, addressed=False, intent="chitchat", contains_wake=False)


def tv_line(rng: np.random.Generator, with_wake: bool) -> Utterance:
    """TV or radio speech; with ``with_wake`` it mentions the wake word, yet must be ignored.

    Examples
    --------
    >>> u = tv_line(np.random.default_rng(1), with_wake=True)
    >>> u.addressed, u.intent, contains_wake_phrase(u.text)
    (False, 'media', True)
    """
    rng = _check_rng(rng)
    if with_wake:
        wake = _pick(rng, WAKE_PHRASES)
        text = _fill(rng, _pick(rng, _TV_WAKE), {"wake": wake})
    else:
        text = _fill(rng, _pick(rng, _TV_PLAIN))
    return Utterance(text=text, addressed=False, intent="media", contains_wake=bool(with_wake))


def monitoring_request(rng: np.random.Generator, target_event_label: str) -> Utterance:
    """Ask the assistant to watch for an event: "hey chime, tell me when the kettle boils".

    ``target_event_label`` is either a phrase that completes "tell me when ..." (such as
    ``"the washing machine finishes"``) or a known event-class label (``"washer_done"``,
    ``"smoke_alarm"``, ...); another label ``foo_bar`` becomes "the foo bar goes off".

    Examples
    --------
    >>> monitoring_request(np.random.default_rng(0), "kettle_whistle").target
    'the kettle boils'
    """
    rng = _check_rng(rng)
    if not isinstance(target_event_label, str) or not target_event_label.strip():
        raise SpecError("templates: field 'target_event_label': need an event label or phrase "
                        f"such as 'the kettle boils', got {target_event_label!r}")
    label = target_event_label.strip()
    if " " in label:
        event = label
    else:
        event = _EVENT_PHRASES.get(label.lower(), f"the {label.lower().replace('_', ' ')} goes off")
    if contains_wake_phrase(event):
        raise SpecError(f"templates: field 'target_event_label': {label!r} contains the wake word")
    text = _addressed_text(rng, _fill(rng, _pick(rng, _MONITOR), {"event": event}))
    return Utterance(text=text, addressed=True, intent="monitoring", contains_wake=True,
                     target=event)


def split_turn(rng: np.random.Generator) -> list[str]:
    """Two or three fragments of one addressed turn, to be separated by 0.5-1.5 s pauses.

    Only the concatenation is a complete request: the first fragment ends mid-sentence, so a
    policy that replies in a pause interrupts the user.

    Examples
    --------
    >>> frags = split_turn(np.random.default_rng(0))
    >>> 2 <= len(frags) <= 3 and contains_wake_phrase(frags[0])
    True
    """
    rng = _check_rng(rng)
    head, tail = _SPLIT_BODIES[int(rng.integers(len(_SPLIT_BODIES)))]
    first = _pick(rng, WAKE_PHRASES) + ", " + _pick(rng, _SPLIT_OPENERS)
    if rng.random() < 0.5:  # three fragments: "hey chime, can you" | "um, remind me to" | ...
        frags = [first, _pick(rng, _SPLIT_FILLERS) + " " + head, tail]
    else:  # two fragments: "hey chime, can you remind me to" | "call mum at six"
        frags = [first + " " + head, _pick(rng, _SPLIT_FILLERS) + " " + tail]
    return [_fill(rng, f) for f in frags]
