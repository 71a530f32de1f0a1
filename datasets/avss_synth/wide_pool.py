"""The wide training pool of AVSS-Synth: every Tux Paint photo stamp that is not a class of the
benchmark nor a near-synonym of a novel class, for training clips only (``--train-pool wide``).

A stamp (its photo cut-out and, where there is one, its same-named recording) enters the pool
only if every check passes, in this order (the first that fails is recorded):

``kind``     a photo cut-out of a physical thing: not clip-art (``cartoon`` folders), not a symbol
             (letters, digits, money, notes: their recordings are speech), not a person (persons
             speak, and speech is the babble noise of the clips), not a mirrored duplicate.
``class``    not a stamp of the 22 classes (``STAMP_CLASSES``, ``EXTRA_STAMPS``): base ones are
             already used, novel ones must never be.
``names``    (check a) no novel class key, prompt name or listed term (``NOVEL_TERMS``) among the
             words of the stamp's path and of the first line of its ``<name>.txt`` description.
``minilm``   (check b) the all-MiniLM-L6-v2 cosine similarity of the stamp's class name to every
             novel prompt name is below ``MINILM_THRESHOLD``.
``review``   (check c) not on the hand-reviewed deny list ``DENY`` (docs: datasets/README.md).

Recordings are vetted with their stamp, and one held out for val / test as an off-screen sound
(``pools.assign_pools``) is never used. ``python datasets/review_wide_pool.py`` prints the decision
on every stamp (the list reviewed in datasets/README.md).
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .media import STAMP_CLASSES, MediaError, _find_sound
from .pools import EXTRA_STAMPS

# Terms that name a novel class, beyond its key and prompt names (avss_synth.txt). Two tiers:
# NOVEL_SYNONYMS are the near-synonyms and hyponyms that MiniLM also places at or above
# MINILM_THRESHOLD (tests/datasets/test_wide_pool.py: both checks reject each). NAME_ONLY_TERMS
# are those it does not: rare, compound, foreign or ambiguous words, and near-synonyms it rates no
# closer to their class than unrelated animals (tigress-tiger 0.38, mule-donkey 0.56, mammoth-
# elephant 0.58, cockerel-rooster 0.55, against cat-frog 0.56): only the names check catches them.
# Decisions on related objects (see the split's base/novel pairs):
# - cello: double bass / contrabass / bass viol are a larger cello of the same shape and sound;
#   the viola is a violin-sized instrument played like the violin (a base class): not listed.
# - donkey: ass, burro, mule, hinny are donkeys or half donkeys; the zebra is denied by review.
# - emergency-car: police, ambulance and fire vehicles of any kind; ordinary cars and trucks are
#   not listed (MiniLM rejects "car" and "truck"), a fireman is a person (kind check).
# - rooster: "chicken" names the species of both rooster (novel) and hen (base): listed with
#   "chick", so no chicken photo (that may be a rooster) enters.
# - goat: the ram is a sheep, but its Tux Paint recording is a goat's bleat: denied by review.
NOVEL_SYNONYMS: Dict[str, Tuple[str, ...]] = {
    "bassoon": ("double bassoon",),
    "emergency-car": ("ambulance", "police car", "firetruck", "fire brigade", "emergency vehicle"),
    "frog": ("toad", "tadpole", "tree frog"),
    "goat": ("mountain goat", "billy goat", "nanny goat", "goatling"),
    "rooster": ("cock", "chicken"),
    "tiger": ("tiger cub", "tigers"),
}
NAME_ONLY_TERMS: Dict[str, Tuple[str, ...]] = {
    "bassoon": ("contrabassoon", "fagotto", "fagott", "dulcian"),
    "cello": (
        "violoncello",
        "double bass",
        "contrabass",
        "upright bass",
        "bass fiddle",
        "bass viol",
        "viola da gamba",
    ),
    "donkey": ("ass", "mule", "burro", "jackass", "hinny"),
    "elephant": ("mammoth", "mastodon", "pachyderm"),
    "emergency-car": ("police", "patrol car", "squad car", "siren"),
    "frog": ("bullfrog", "amphibian"),
    "goat": ("mountaingoat", "ibex"),
    "rooster": ("cockerel", "capon", "chanticleer", "bantam", "chick"),
    "tiger": ("tigress", "tigon", "liger"),
}
# Terms matched as whole words only (inside a word they mean something else: glass, peacock).
WORD_ONLY_TERMS = ("ass", "cock", "chick", "police", "siren")

# Cosine similarity (all-MiniLM-L6-v2, plain class names, no template) at or above which a stamp
# name counts as a novel class. Chosen as the largest value that rejects every NOVEL_SYNONYMS term
# (the lowest of them: ambulance-"emergency car" 0.636) with a margin, and that admits the clear
# non-novel names that MiniLM places near a novel class: cat-frog 0.56, guitar-cello 0.56,
# whale-elephant 0.58, carrot-donkey 0.59. datasets/README.md lists every score.
MINILM_THRESHOLD = 0.60

# Folders whose stamps are not photo cut-outs of physical things, or are persons (kind check).
NOT_OBJECT_FOLDERS = ("symbols", "people")
PERSON_STAMPS = (
    "military/fireman240a.png",
    "military/paratrooper.png",
    "seasonal/christmas/Santa.png",
    "space/spacewalk.png",
)

# Hand review (check c): stamps admitted by the automatic checks but left out, with the reason.
# The recordings were listened to through YAMNet's AudioSet tags (datasets/README.md).
DENY: Dict[str, str] = {
    "animals/mammals/bovines/ram.png": "its recording is a goat's bleat (YAMNet: Goat 0.82)",
    "animals/mammals/equines/zebra.png": "an equid, the donkey's closest relative in the pool",
    "seasonal/halloween/ghost.png": "its recording is a voice (YAMNet: Speech, Chant)",
    "seasonal/hanukkah/dreydl-gimmel.png": "its recording is a spoken letter (YAMNet: Speech 1.00)",
    "seasonal/hanukkah/dreydl-hay.png": "its recording is a spoken letter (speech)",
    "seasonal/hanukkah/dreydl-nun.png": "its recording is a spoken letter (YAMNet: Speech 1.00)",
    "seasonal/hanukkah/dreydl-shin.png": "its recording is a spoken letter (speech)",
    "town/roadsigns/xing_ped.png": "a sign; its recording is music (YAMNet: Accordion)",
    "town/roadsigns/xing_school.png": "a sign; its recording is voices (YAMNet: Speech, Laughter)",
    "town/roadsigns/no_uturn.png": "a sign; its recording is farm fowl (YAMNet: Fowl 0.79)",
    "town/flags/checkeredflag.png": "a flag; its recording is a vehicle (YAMNet: Vehicle)",
    "vehicles/auto/sedan.png": "a sedan, the body of the novel class's police sedans (MiniLM 0.52)",
}
# Recordings left out while their stamp stays (a silent distractor only), with the reason.
DENY_SOUNDS: Dict[str, str] = {
    "animals/birds/nandou.png": "silent recording (YAMNet: Silence 1.00)",
    "animals/lizards/iguana.png": "silent recording (YAMNet: Silence 1.00)",
    "animals/marsupials/wombat.png": "silent recording (YAMNet: Silence 1.00)",
    "animals/mammals/giraffe.png": "silent recording (the generator's decoder refuses it)",
    "animals/mammals/ferret.png": "sounds like a frog (YAMNet: Frog 0.35, novel)",
    "animals/mammals/bears/bear.png": "a roar tagged as a big cat (YAMNet: Roaring cats 0.37)",
    "animals/mammals/bovines/bison.png": "a roar tagged as a big cat (YAMNet: Roaring cats 0.48)",
    "animals/mammals/aquatic/orca.png": "tagged as speech (YAMNet: Speech 0.36)",
    "animals/mammals/hippopotamus.png": "tagged as speech (YAMNet: Speech 0.27)",
    "animals/insects/xanthia.png": "not the moth's sound (YAMNet: Fart 0.93)",
    "food/fruit/apple_red.png": "a person biting (YAMNet: Grunt 0.81, Groan)",
    "household/arttools/scissors_small_open.png": "tagged as speech (YAMNet: Speech 0.66)",
    "household/tools/saw.png": "8 kHz recording of low quality (as in media.py)",
    "space/apollo_lander.png": "a radio voice (YAMNet: Speech 0.73)",
    "military/final-roll-call.png": "a bugle call (YAMNet: Trumpet 0.86), not the object's sound",
}

# Stem names (``stamp_name``) -> the class name a stamp trains as: plain English for compounds
# and abbreviations (so that the MiniLM check reads real words), one class for variants of one
# thing, and one class for species of a kind (flowers, fish, hats, trees, nuts): label indices
# must stay below the ignore value 255. Reviewed by hand with the list in datasets/README.md.
CLASS_NAMES: Dict[str, str] = {
    "adelaide rosella": "rosella",
    "albino peahen": "peafowl",
    "heron greatblue": "heron",
    "heron greatblue flying": "heron",
    "helmeted guineafowl": "guineafowl",
    "little penguin": "penguin",
    "magellanic penguin": "penguin",
    "nandou": "rhea",
    "pink flamingo": "flamingo",
    "rainbow lorikeet": "lorikeet",
    "tucan": "toucan",
    "bluegroper": "fish",
    "coraltrout": "fish",
    "moonwrasse": "fish",
    "stripedfish": "fish",
    "brown slug": "slug",
    "chimp": "chimpanzee",
    "tamarin emperor": "tamarin",
    "european bear": "bear",
    "edward bear": "teddy bear",
    "gnu baby stand": "gnu",
    "gnu baby": "gnu",
    "gnu sitting": "gnu",
    "gnu stand": "gnu",
    "rabbit little": "rabbit",
    "rhino black": "rhinoceros",
    "wildboar": "wild boar",
    "murray mussel": "mussel",
    "clothespin new": "clothespin",
    "clothespin old": "clothespin",
    "blue fedora": "hat",
    "green fedora": "hat",
    "tophat": "hat",
    "t baseballcap": "baseball cap",
    "t glove": "glove",
    "t jacket": "jacket",
    "t pants": "trousers",
    "t poloshirt": "shirt",
    "t scarf": "scarf",
    "t shirt": "shirt",
    "t sock": "sock",
    "t tshirt": "shirt",
    "apricot whole": "apricot",
    "cherry stella": "cherry",
    "apple fuji": "apple",
    "apple granny smith": "apple",
    "apple green": "apple",
    "apple red": "apple",
    "apple sierra beauty": "apple",
    "orange seville": "orange",
    "sliced orange": "orange",
    "sliced lime": "lime",
    "mandarine": "mandarin",
    "walnut shelled": "nut",
    "chilepepper": "chili pepper",
    "garlics": "garlic",
    "pumpkin small": "pumpkin",
    "redlettuce": "lettuce",
    "lettuce bolted": "lettuce",
    "yellowpepper": "pepper",
    "pattypan squash": "squash",
    "cep": "mushroom",
    "camera 35mm": "camera",
    "cymbal crash": "cymbal",
    "guitar classical": "guitar",
    "guitar electric": "guitar",
    "guitar electric bass": "bass guitar",
    "lightbulb": "light bulb",
    "pen dryerase": "marker pen",
    "highlighter": "marker pen",
    "scissors small closed": "scissors",
    "scissors small open": "scissors",
    "cylinder": "gas cylinder",
    "pitcher small": "pitcher",
    "garbagecan": "garbage can",
    "home compost bin": "compost bin",
    "rubberduck": "rubber duck",
    "cementmixer": "cement mixer",
    "mallet metal": "mallet",
    "paintbrush large": "paintbrush",
    "plyers": "pliers",
    "wrench adjustable": "wrench",
    "wrench plumbers": "wrench",
    "bandage adhesive": "bandage",
    "mercurythermometer": "thermometer",
    "old naval shell": "cannon shell",
    "bradley": "armoured vehicle",
    "infantry stryker": "armoured vehicle",
    "f22 raptor": "fighter jet",
    "ww2 german gun": "cannon",
    "lightningbolt": "lightning",
    "eggplant": "eggplant",
    "adeenia": "flower",
    "anemone red": "flower",
    "anthoorium": "flower",
    "appooppanthady": "flower",
    "bolsom": "flower",
    "chemparathi": "flower",
    "chuvanna plastic poo": "flower",
    "red gazania": "flower",
    "whitestar petunia": "flower",
    "yellow flower": "flower",
    "holly leaves": "holly",
    "holm oak": "tree",
    "liberia palm": "tree",
    "rambutan": "tree",
    "birch": "tree",
    "candy cane": "candy cane",
    "german christmas toy": "wooden toy",
    "xmas tp bulb": "christmas ornament",
    "xmaswreath": "wreath",
    "lamp": "christmas ornament",
    "christmas pudding": "pudding",
    "mince pie": "pie",
    "hard candy": "candy",
    "bunny head": "rabbit",
    "bat left": "bat",
    "blackcat": "cat",
    "grave": "gravestone",
    "jackolantern mean": "jack o lantern",
    "dreydl": "dreidel",
    "holiday candle": "candle",
    "party horn in": "party horn",
    "party horn out": "party horn",
    "wrapped chocolate easter egg": "easter egg",
    "apollo lander": "lunar lander",
    "moon 3qt": "moon",
    "moon crescent": "moon",
    "moon full": "moon",
    "0 sun": "sun",
    "1 mercury": "planet",
    "2 venus": "planet",
    "3 earth": "planet",
    "4 mars": "planet",
    "5 jupiter": "planet",
    "6 saturn": "planet",
    "7 uranus": "planet",
    "8 neptune": "planet",
    "9 pluto": "planet",
    "voyager": "space probe",
    "australian rules football": "football",
    "cricketball": "cricket ball",
    "soccer": "soccer ball",
    "rugby goal posts": "goal posts",
    "trophy cup": "trophy",
    "blue and yellowflag": "flag",
    "greenflag": "flag",
    "redflag": "flag",
    "whiteflag": "flag",
    "yellowflag": "flag",
    "inukshuk outline": "inukshuk",
    "inukshuk photo": "inukshuk",
    "arrow": "road sign",
    "crossroads": "road sign",
    "dead end sign": "road sign",
    "give way sign": "road sign",
    "hospital": "road sign",
    "no entry sign": "road sign",
    "railroad crossing": "road sign",
    "roundabout": "road sign",
    "school sign": "road sign",
    "stop": "road sign",
    "t junction": "road sign",
    "toilets": "road sign",
    "yield": "road sign",
    "stoplight 01 red": "traffic light",
    "stoplight 02 yellow": "traffic light",
    "stoplight 03 green": "traffic light",
    "uk post box": "mailbox",
    "usps mailbox": "mailbox",
    "7spoke": "wheel",
    "beetle": "car",
    "sportscar": "sports car",
    "indycar": "race car",
    "dumper": "dump truck",
    "pink tricycle": "tricycle",
    "balloon": "hot air balloon",
    "": "airplane",  # planes/747.png: the stem is only digits
    "garbagetruck": "garbage truck",
    "green korean bus": "bus",
    "chinesejunk": "sailing ship",
    "walnutboat": "boat",
    "wheel tractor": "tractor",
    "chick hatched": "chick",
    "chick in egg": "chick",
    "bunny egg": "rabbit",
    "bunny": "rabbit",
    "final roll call": "battlefield cross",
    "santahat": "hat",
    "feathered hat": "hat",
    "propeller hat": "hat",
    "sombrero": "hat",
    "party hat": "hat",
    "butterflyfish": "fish",
    "clownfish": "fish",
    "dolphinfish": "fish",
    "lionfish": "fish",
    "daffodil": "flower",
    "iris": "flower",
    "marigold": "flower",
    "pigface": "flower",
    "rose": "flower",
    "doe": "deer",
    "wapiti": "deer",
    "peacock": "peafowl",
    "walnut": "nut",
    "pecan": "nut",
    "almond": "nut",
}

# Recordings of the pool that may also play as off-screen sounds: not those of animals and
# instruments whose sound resembles a class (as for pools.OFFSCREEN_SOUNDS: no bird, bovine,
# equine, feline, canine, drum or cymbal).
OFFSCREEN_EXCLUDED_FOLDERS = (
    "animals/birds",
    "animals/mammals/bovines",
    "animals/mammals/equines",
    "animals/mammals/cats",
    "animals/mammals/dogs",
    "hobbies/music/percussion",
    "seasonal/easter",
    "seasonal/halloween/blackcat",
)

CHECKS = ("kind", "class", "names", "minilm", "review")


@dataclass(frozen=True)
class StampDecision:
    """The verdict on one stamp: admitted, or the first check that rejected it and why."""

    path: str  # relative to the stamps folder
    name: str  # the class name it would train as
    description: str  # first line of <name>.txt ("" without one)
    has_sound: bool  # a same-named recording exists
    admitted: bool
    check: str  # "" when admitted, else one of CHECKS
    reason: str
    similarity: float = float("nan")  # highest MiniLM similarity to a novel prompt name
    nearest: str = ""  # the novel prompt name it is most similar to
    sound_denied: str = ""  # why its recording is not used (DENY_SOUNDS), "" otherwise

    @property
    def sound_usable(self) -> bool:
        """Whether the pool may play the stamp's recording (admitted, not denied)."""
        return self.admitted and self.has_sound and not self.sound_denied


@dataclass(frozen=True)
class WidePool:
    """The admitted pool: per class key (``class_key``), its stamps and usable recordings."""

    stamps: Dict[str, Tuple[str, ...]]  # every admitted class -> its stamp paths
    sounds: Dict[str, Tuple[str, ...]]  # classes with usable recordings -> recording paths
    offscreen: Tuple[str, ...]  # recordings that may also play as train off-screen sounds
    prompt_names: Dict[str, str]  # class key -> class name

    @property
    def sounding_keys(self) -> List[str]:
        """Classes that can be a sounding object (they have a recording)."""
        return sorted(self.sounds)


def normalise(text: str) -> str:
    """Lower case, separators and punctuation as single spaces."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def stamp_name(rel: str) -> str:
    """The class name of a stamp: its file stem without numbering, mirror and photo suffixes,
    renamed by ``CLASS_NAMES``."""
    stem = Path(rel).stem.lower()
    stem = re.sub(r"(_mirror|_photo(_\d+)?|[-_]?\d+)$", "", stem)
    stem = normalise(re.sub(r"[-_][a-z]$", "", stem))  # grave-a, grave-b
    return CLASS_NAMES.get(stem, stem)


def class_key(name: str) -> str:
    """The metadata key of a pool class: its name with hyphens (``teddy bear`` -> ``teddy-bear``);
    metadata.csv joins the keys of a clip with ``_``."""
    return name.replace(" ", "-")


def read_description(stamps_dir: Path, rel: str) -> str:
    """The first line of the stamp's ``<name>.txt`` (its English description), or ""."""
    path = (stamps_dir / rel).with_suffix(".txt")
    if not path.is_file():
        return ""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().strip()


def novel_terms(novel_prompts: Mapping[str, Sequence[str]]) -> Dict[str, List[str]]:
    """Novel class key -> every term that names it: key, prompt names and the two tables."""
    out = {}
    for key, prompts in novel_prompts.items():
        terms = [key, key.replace("-", " "), *prompts]
        terms += [*NOVEL_SYNONYMS.get(key, ()), *NAME_ONLY_TERMS.get(key, ())]
        out[key] = sorted({normalise(t) for t in terms})
    return out


def name_match(text: str, terms: Mapping[str, Sequence[str]]) -> Optional[Tuple[str, str]]:
    """The (novel class, term) that ``text`` names, or None (check a).

    A term matches as whole words (plurals included); a one-word term that is not in
    ``WORD_ONLY_TERMS`` also matches inside a compound word (``mountaingoat``, ``firetruck``)."""
    words = normalise(text)
    padded = f" {words} "
    for key, options in terms.items():
        for term in options:
            if re.search(rf" {re.escape(term)}(s|es)? ", padded):
                return key, term
            if " " not in term and term not in WORD_ONLY_TERMS:
                if any(term in w for w in words.split()):
                    return key, term
    return None


def _kind_problem(rel: str) -> str:
    parts = rel.split("/")
    if parts[0] in NOT_OBJECT_FOLDERS:
        return f"{parts[0]}/ holds no photo of a physical object (or a person)"
    if "cartoon" in parts[:-1]:
        return "clip-art, not a photo cut-out"
    if rel in PERSON_STAMPS:
        return "a person"
    if Path(rel).stem.endswith("_mirror"):
        return "a mirrored copy of another stamp (clips flip stamps anyway)"
    return ""


def minilm_similarity(
    names: Sequence[str], novel_prompts: Mapping[str, Sequence[str]], encoder=None
) -> List[Tuple[float, str]]:
    """Per name, the highest cosine similarity to a novel prompt name and that prompt name.

    ``encoder``: an object with ``encode(texts) -> (N, E)`` normalised rows (default: the
    project's packaged all-MiniLM-L6-v2, ``MiniLMTextEncoder``; ImportError without it)."""
    if encoder is None:
        from ovavss_d2.modeling.text_encoder.minilm import MiniLMTextEncoder

        encoder = MiniLMTextEncoder()
    prompts = sorted({p for ps in novel_prompts.values() for p in ps})
    if not names:
        return []
    sim = encoder.encode(list(names)) @ encoder.encode(prompts).T  # (names, prompts)
    best, index = sim.max(dim=1)
    return [(round(float(b), 3), prompts[int(i)]) for b, i in zip(best, index)]


def candidate_stamps(stamps_dir: Path) -> List[str]:
    """Every ``.png`` stamp under the folder, relative and sorted."""
    return sorted(p.relative_to(stamps_dir).as_posix() for p in stamps_dir.rglob("*.png"))


def review_stamps(
    stamps_dir: Path,
    novel_prompts: Mapping[str, Sequence[str]],
    encoder=None,
    similarity: Optional[Callable[[Sequence[str]], List[Tuple[float, str]]]] = None,
) -> List[StampDecision]:
    """Run the checks on every stamp of ``stamps_dir`` (see the module docstring).

    Args:
        stamps_dir: a folder laid out like ``/usr/share/tuxpaint/stamps``.
        novel_prompts: novel class key -> its prompt names (from the class list).
        encoder: text encoder for ``minilm_similarity`` (default MiniLM).
        similarity: replaces ``minilm_similarity`` (tests).
    Returns:
        one decision per stamp, in path order.
    """
    stamps_dir = Path(stamps_dir)
    if not stamps_dir.is_dir():
        raise MediaError(f"stamp folder {stamps_dir} not found (tuxpaint-stamps-default)")
    terms = novel_terms(novel_prompts)
    class_stamps = {**STAMP_CLASSES, **EXTRA_STAMPS}
    rows = []
    for rel in candidate_stamps(stamps_dir):
        name = stamp_name(rel)
        desc = read_description(stamps_dir, rel)
        row = dict(path=rel, name=name, description=desc)
        row["has_sound"] = _find_sound(stamps_dir, rel) is not None
        check, reason = "", _kind_problem(rel)
        if reason:
            check = "kind"
        elif rel in class_stamps:
            check, reason = "class", f"a stamp of the class '{class_stamps[rel]}'"
        else:
            hit = name_match(f"{rel} {desc}", terms)
            if hit:
                check, reason = "names", f"names '{hit[1]}' (novel {hit[0]})"
        rows.append((row, check, reason))
    pending = [r for r, check, _ in rows if not check]
    scores = (similarity or (lambda n: minilm_similarity(n, novel_prompts, encoder)))(
        sorted({r["name"] for r in pending})
    )
    score_of = dict(zip(sorted({r["name"] for r in pending}), scores))
    out = []
    for row, check, reason in rows:
        sim, nearest = score_of.get(row["name"], (float("nan"), ""))
        if not check and sim >= MINILM_THRESHOLD:
            check, reason = "minilm", f"similarity {sim:.3f} to '{nearest}'"
        if not check and row["path"] in DENY:
            check, reason = "review", DENY[row["path"]]
        out.append(
            StampDecision(
                **row,
                admitted=not check,
                check=check,
                reason=reason,
                similarity=sim,
                nearest=nearest,
                sound_denied=DENY_SOUNDS.get(row["path"], "") if row["has_sound"] else "",
            )
        )
    return out


def build_wide_pool(
    decisions: Sequence[StampDecision],
    stamps_dir: Path,
    held_out: Sequence[str] = (),
    class_keys: Sequence[str] = (),
) -> WidePool:
    """The pool of the admitted stamps.

    Args:
        decisions: ``review_stamps`` output.
        stamps_dir: the folder the decisions' paths are relative to.
        held_out: recordings that only val / test may play (their off-screen pools): never used.
        class_keys: the benchmark's class keys; a pool class of the same key is an error.
    """
    stamps_dir = Path(stamps_dir)
    held = set(held_out)
    stamps: Dict[str, List[str]] = {}
    sounds: Dict[str, List[str]] = {}
    names: Dict[str, str] = {}
    offscreen = []
    for d in decisions:
        if not d.admitted:
            continue
        key = class_key(d.name)
        names[key] = d.name
        stamps.setdefault(key, []).append(str(stamps_dir / d.path))
        sound = _find_sound(stamps_dir, d.path) if d.sound_usable else None
        if sound is None or str(sound) in held:
            continue
        sounds.setdefault(key, []).append(str(sound))
        if not any(d.path.startswith(f) for f in OFFSCREEN_EXCLUDED_FOLDERS):
            offscreen.append(str(sound))
    clash = sorted(set(stamps) & set(class_keys))
    if clash:
        raise MediaError(f"wide-pool classes {clash} share a key with the class list")
    return WidePool(
        stamps={k: tuple(sorted(v)) for k, v in sorted(stamps.items())},
        sounds={k: tuple(sorted(v)) for k, v in sorted(sounds.items())},
        offscreen=tuple(sorted(offscreen)),
        prompt_names=dict(sorted(names.items())),
    )


def index_wide_pool(
    stamps_dir: Path,
    novel_prompts: Mapping[str, Sequence[str]],
    held_out: Sequence[str] = (),
    class_keys: Sequence[str] = (),
    encoder=None,
) -> WidePool:
    """``review_stamps`` then ``build_wide_pool`` (MediaError without the MiniLM package)."""
    try:
        decisions = review_stamps(stamps_dir, novel_prompts, encoder)
    except ImportError as e:
        raise MediaError(f"the wide pool's MiniLM check needs its text encoder: {e}") from None
    return build_wide_pool(decisions, stamps_dir, held_out, class_keys)


WIDE_SHARE = 0.5  # chance that an object of a training clip is drawn from the wide pool


def sample_wide_keys(
    rng,
    pool: Sequence[str],
    first_key: str,
    wide: WidePool,
    p_single: float,
    p_three: float,
    distractor_probs: Sequence[float],
) -> Tuple[str, List[str], int]:
    """``objects.sample_object_keys`` for a training clip with the wide pool: every object is a
    wide-pool class with probability ``WIDE_SHARE`` (sounding ones among those with a recording,
    silent distractors among all), else a base class (the first one: the split's round robin).

    Returns:
        AVSBench subset, object keys (sources first, then silent distractors), source count.
    """
    subset = "v1s" if rng.random() < p_single else "v1m"
    num_sources = 1 if subset == "v1s" else (3 if rng.random() < p_three else 2)
    num_distractors = int(rng.choice(len(distractor_probs), p=distractor_probs))
    sources: List[str] = []
    distractors: List[str] = []
    for i in range(num_sources + num_distractors):
        from_wide = rng.random() < WIDE_SHARE
        if i == 0 and not from_wide:
            sources.append(first_key)
            continue
        sounding = i < num_sources
        wide_keys = wide.sounding_keys if sounding else sorted(wide.stamps)
        taken = sources + distractors
        options = [k for k in (wide_keys if from_wide else pool) if k not in taken]
        if options:  # else the slot stays empty (a small pool ran out of classes)
            (sources if sounding else distractors).append(options[int(rng.integers(len(options)))])
    return subset, sources + distractors, len(sources)
