"""Deterministic training of the project's small byte-level BPE tokenizer.

No pretrained tokenizer is downloaded: the corpus is generated here from word lists (COCO-style category names,
colours, shapes, sizes, spatial relations), caption-like and referring sentences built from them with a seeded
RNG, generic English text, and the prompt templates of both variants, so every template string tokenises compactly.
The same (vocab_size, seed) always yields a byte-identical `tokenizer.json`.

The model's embedding table may have more rows than the tokenizer has ids (the `full` preset pads to Phi-1.5's
51,200 rows); ids without a token decode to nothing. A real Phi-1.5 checkpoint would ship its own tokenizer.json.
"""
from __future__ import annotations

import random
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from .prompt import TEMPLATES

# Order fixes their ids: 0, 1, 2, 3.
SPECIAL_TOKENS = ("<|endoftext|>", "<image>", "<PER>", "[SEG]")

THINGS = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign parking_meter "
    "bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie suitcase frisbee "
    "skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass "
    "cup fork knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake chair couch "
    "potted_plant bed dining_table toilet tv laptop mouse remote keyboard cell_phone microwave oven toaster sink "
    "refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
).split()
STUFF = (
    "banner blanket bridge cardboard counter curtain door floor flower fruit gravel house light mirror net pillow "
    "platform playingfield railroad river road roof sand sea shelf snow stairs tent towel wall wall_brick wall_stone "
    "wall_tile wall_wood water window ceiling sky tree fence cabinet table pavement mountain grass dirt paper food "
    "building rock rug background"
).split()
COLOURS = ("red green blue yellow orange purple pink brown black white gray grey cyan magenta golden silver dark "
           "light").split()
SHAPES = ("circle square triangle rectangle star ellipse disk ring diamond hexagon cross heart shape object blob "
          "box ball cube sphere cylinder").split()
SIZES = ("small large big tiny huge little tall short wide narrow long medium").split()
RELATIONS = ("left of|right of|on top of|below|above|under|next to|behind|in front of|near|beside|between|inside|"
             "on the left|on the right|at the top|at the bottom|in the middle|in the center|closest to|farthest from|"
             "to the left of|to the right of").split("|")
ORDINALS = "first second third last leftmost rightmost topmost bottom top middle only other".split()
PEOPLE = ("man woman boy girl child kid guy lady player people men women skier surfer rider person").split()
VERBS = ("sitting standing holding riding eating wearing walking running lying looking playing carrying throwing "
         "catching flying parked jumping smiling watching using").split()
GENERIC = """
The quick brown fox jumps over the lazy dog. A picture is worth a thousand words. This image shows a busy street
with people walking on the sidewalk and cars waiting at the traffic light. There is a small dog sitting on a
wooden bench in the park, and two children are playing with a kite on the grass. A plate of food with rice,
vegetables and a piece of chicken is on the table next to a glass of water. The kitchen has white cabinets, a
stainless steel refrigerator and a window above the sink. A man in a blue shirt is riding a bicycle down the road
while a woman holds an umbrella. Several boats are docked in the harbor under a clear sky. The living room contains
a couch, a television, a lamp and a bookshelf full of books. Please identify all objects according to the given
phrase list. Please identify the target according to the following instruction. The perception result is ready.
What is in the picture? Describe the image in one sentence. It is a sunny day and the mountains are covered with
snow. Nothing in the image matches the description. Find every object of each category, and segment the region
that the sentence refers to. One, two, three, four, five, six, seven, eight, nine, ten objects are visible.
"""
COMMON = """
about above across after again against all almost alone along already also although always among animal another
answer any anything appear area around art ask away back ball base beautiful because become before begin behind
being believe best better between bird black blue board boat body book both bottom box boy bring brother build
building busy buy call came can carry case cat catch center change child children city class clear close cloud
coat cold color come common complete contain corner could country course cover cross cut dark day deep describe
did different direction distance does done door down draw dress drive during each early earth east easy eat edge
end enough even evening every example eye face fall family far farm fast father feel feet field fill final find
fine fire fish floor follow food foot form found four free friend from front full game garden gave girl give glass
good great green ground group grow half hand happen hard have head hear heavy held help here high hill hold home
horse hour house how huge idea inside island just keep kind king know lake land large last late lay lead learn
leave left less letter life light line list little live long look low made main make many map mark may measure
meet middle might mile mind minute miss moon more morning most mother mountain move much music must name near
need never new next night north note nothing notice now number object ocean off often old once only open order
other outside over own page paint pair paper part pass past pattern people perhaps picture piece place plain plan
plant play point pole pose position power present pull push put question quick quiet rain reach read ready real
record region remember rest right river road rock room round row rule run same sat saw say school sea season seat
second see seem self sentence set several shape share ship shore short should show side sign simple since sing
sit size sleep slow small snow soft some something song soon sound south space speak special stand start state
station stay step still stone stop store story street strong study such summer sun sure surface swim table take
talk tall teach tell than thing think those though thought three through time together told took top toward town
travel true turn two under until upon usual valley very visible voice wait walk want warm watch wave way weather
week well went west what wheel where which while whole wide wild wind winter with without wood word work world
write year young zero one three four five six seven eight nine ten hundred thousand
"""


def _phrase(word: str) -> str:
    return word.replace("_", " ")


def _sentences(rng: random.Random, count: int) -> list[str]:
    things = [_phrase(w) for w in THINGS]
    stuff = [_phrase(w) for w in STUFF]
    out = []
    for _ in range(count):
        kind = rng.randrange(5)
        colour, shape, size = rng.choice(COLOURS), rng.choice(SHAPES), rng.choice(SIZES)
        rel, other = rng.choice(RELATIONS), f"{rng.choice(COLOURS)} {rng.choice(SHAPES)}"
        if kind == 0:
            out.append(f"the {colour} {shape} {rel} the {other}")
        elif kind == 1:
            out.append(f"{rng.choice(ORDINALS)} {size} {colour} {shape}")
        elif kind == 2:
            out.append(f"a {rng.choice(PEOPLE)} {rng.choice(VERBS)} a {rng.choice(things)} {rel} the "
                       f"{rng.choice(stuff)}.")
        elif kind == 3:
            out.append(f"An image of {rng.randint(1, 9)} {size} {colour} {shape}s and a {rng.choice(things)}.")
        else:
            picks = rng.sample(things + stuff + [f"{colour} {shape}"], 6)
            out.append(", ".join(picks))
    return out


def build_corpus(seed: int = 0) -> list[str]:
    """The training corpus, one string per line; depends only on `seed`."""
    rng = random.Random(seed)
    words = [_phrase(w) for w in (*THINGS, *STUFF, *COLOURS, *SHAPES, *SIZES, *ORDINALS, *PEOPLE, *VERBS)]
    # Phrases are encoded without a leading space (each text piece on its own), so they also appear at line starts,
    # repeated so they pass min_frequency.
    lines = [*words, *RELATIONS] * 3
    lines += [line.strip() for line in GENERIC.strip().splitlines()] * 2
    common = COMMON.split()
    lines += [" ".join(rng.choice(common) for _ in range(12)) for _ in range(3000)]
    for variant in TEMPLATES.values():
        lines += [text for text in variant.values() if text] * 3
    lines += _sentences(rng, 6000)
    return lines


def train_tokenizer(vocab_size: int, seed: int = 0) -> Tokenizer:
    """Train the byte-level BPE; the result has at most `vocab_size` ids (fewer if the corpus runs out of merges)."""
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size {vocab_size} is below the 256 byte symbols + {len(SPECIAL_TOKENS)} specials")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(build_corpus(seed), trainer)
    return tok


def special_token_ids(tok: Tokenizer) -> dict[str, int]:
    ids = {text: tok.token_to_id(text) for text in SPECIAL_TOKENS}
    missing = [text for text, i in ids.items() if i is None]
    if missing:
        raise ValueError(f"tokenizer lacks special tokens {missing}")
    return ids


def save_tokenizer(tok: Tokenizer, path: str | Path) -> None:
    Path(path).write_text(tok.to_str(pretty=True), encoding="utf-8")


def load_tokenizer(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))
