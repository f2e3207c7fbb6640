"""A generated text corpus with real structure, for word vectors and masked language models.

Word2vec learns from *distributional* signal: words that occur in similar contexts get similar
vectors. The corpus below is built so that four relations show up in the contexts, strongly
enough that word2vec learns them in seconds on a CPU:

* **gender** -- every person word comes in a pair (king/queen, father/mother, ...). Both words of
  a pair are used in the same sentence templates, and differ only in the pronouns around them
  (he/his/him versus she/her/her). So ``queen - king`` and ``woman - man`` point the same way.
* **royalty** -- king, queen, prince and princess share royal contexts (crown, throne, palace,
  kingdom); their common counterparts man, woman, boy and girl share village contexts instead.
  Each person word is a mix of *traits* (royal or common, adult or young, a family role, a job)
  with templates of their own, so ``king - man + boy`` lands near ``prince``.
* **plural** -- animal nouns appear in the singular and the plural, and the verb agrees
  ("the dog barks" / "the dogs bark", "this cat is" / "these cats are").
* **capital** -- each country and its capital share the country's language and food words and
  appear together ("paris is the capital of france"); countries share "country" contexts and
  capitals share "city" contexts.

Each sentence mentions at most one person, and every pronoun in it refers to that person, so
gender agreement is exact: a sentence with "queen" never contains "his". A masked language model
can therefore learn to fill "the queen wears [MASK] crown" with "her".

Sentences are lowercase words separated by single spaces, without punctuation. The corpus is
determined by ``CorpusConfig.seed``.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Optional

import torch

# --------------------------------------------------------------------------------------------
# Special tokens, at fixed ids 0..4 in every Vocab.

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIAL_TOKENS))

# --------------------------------------------------------------------------------------------
# People: (male word, female word, traits). Both words of a pair share the traits, so their
# contexts differ only by the pronouns; every pair has its own combination of traits.

PEOPLE = (
    ("man", "woman", ("adult", "common")),
    ("boy", "girl", ("young", "common")),
    ("king", "queen", ("adult", "royal")),
    ("prince", "princess", ("young", "royal")),
    ("father", "mother", ("adult", "parent")),
    ("son", "daughter", ("young", "child")),
    ("brother", "sister", ("young", "sibling")),
    ("uncle", "aunt", ("adult", "relative")),
    ("husband", "wife", ("adult", "married")),
    ("grandfather", "grandmother", ("old", "grandparent")),
    ("actor", "actress", ("adult", "acting")),
    ("waiter", "waitress", ("adult", "serving")),
)

# Pronouns fill the {he}, {his} and {him} slots of a template.
PRONOUNS = {
    "male": {"he": "he", "his": "his", "him": "him"},
    "female": {"he": "she", "his": "her", "him": "her"},
}

# Templates by trait; {p} is the person. "person" templates are used by everybody.
TRAIT_TEMPLATES = {
    "person": (
        "the {p} says that {he} is happy",
        "the {p} smiles and {he} waves",
        "{he} is the {p}",
        "the {p} meets {his} friend",
    ),
    "royal": (
        "the {p} rules the kingdom from {his} palace",
        "the {p} wears {his} golden crown",
        "the {p} sits on {his} throne",
        "the royal {p} waves to {his} subjects",
        "the {p} lives in the royal palace",
    ),
    "common": (
        "the {p} lives in a small house in the village",
        "the {p} buys vegetables at the market",
        "the {p} works hard on {his} farm",
    ),
    "adult": (
        "the {p} drives {his} car to work",
        "the {p} reads {his} newspaper in the morning",
        "the {p} pays {his} bills",
    ),
    "young": (
        "the {p} plays with {his} toys",
        "the {p} goes to school with {his} classmates",
        "the {p} is young and {he} likes games",
    ),
    "old": (
        "the {p} is old and {he} walks with a stick",
        "the {p} remembers {his} youth",
    ),
    "parent": (
        "the {p} cooks dinner for {his} children",
        "the {p} reads a story to {his} children",
        "the {p} hugs {his} children",
    ),
    "child": (
        "the {p} visits {his} parents",
        "the {p} helps {his} parents at home",
        "the {p} calls {his} parents",
    ),
    "sibling": (
        "the {p} shares {his} room with {his} siblings",
        "the {p} plays cards with {his} siblings",
    ),
    "relative": (
        "the {p} visits {his} relatives at christmas",
        "the {p} brings presents for {his} relatives",
    ),
    "married": (
        "the {p} wears {his} wedding ring",
        "the {p} celebrates {his} wedding anniversary",
        "the {p} loves {his} spouse",
    ),
    "grandparent": (
        "the {p} tells stories to {his} grandchildren",
        "the {p} knits for {his} grandchildren",
    ),
    "acting": (
        "the {p} plays a role in the film",
        "the {p} learns {his} lines for the play",
        "the {p} bows on the stage",
    ),
    "serving": (
        "the {p} serves food in the restaurant",
        "the {p} carries {his} tray to the table",
        "the {p} takes the order of the guests",
    ),
}

# --------------------------------------------------------------------------------------------
# Animals: (singular, plural, sound verb singular, sound verb plural, adjective, food, home).
# The adjective, food and home belong to one species and do not change with number, so they tie
# "dog" to "dogs"; the verbs and determiners change with number, so they tie "dogs" to "cats".
# All singular nouns start with a consonant, so "a" is always the right article.

ANIMALS = (
    ("dog", "dogs", "barks", "bark", "loyal", "bones", "kennel"),
    ("cat", "cats", "meows", "meow", "lazy", "milk", "basket"),
    ("horse", "horses", "neighs", "neigh", "fast", "hay", "stable"),
    ("bird", "birds", "sings", "sing", "tiny", "seeds", "nest"),
    ("cow", "cows", "moos", "moo", "gentle", "grass", "meadow"),
    ("pig", "pigs", "grunts", "grunt", "muddy", "apples", "sty"),
    ("duck", "ducks", "quacks", "quack", "yellow", "bread", "pond"),
    ("wolf", "wolves", "howls", "howl", "grey", "meat", "forest"),
    ("lion", "lions", "roars", "roar", "fierce", "antelopes", "savanna"),
    ("frog", "frogs", "croaks", "croak", "green", "insects", "swamp"),
    ("mouse", "mice", "squeaks", "squeak", "little", "crumbs", "hole"),
    ("snake", "snakes", "hisses", "hiss", "long", "eggs", "desert"),
)

# Verbs that agree with an animal subject: (singular form, plural form). A template names the
# verb by its singular form, e.g. "{eats}", and gets the form that agrees with the noun.
VERBS = (("is", "are"), ("eats", "eat"), ("sleeps", "sleep"), ("runs", "run"), ("lives", "live"))
DETERMINERS = {"singular": ("the", "a", "this", "one"), "plural": ("the", "these", "many", "two")}

# In every animal template the verb comes right after the noun it agrees with.
ANIMAL_TEMPLATES = (
    "{det} {noun} {sound} in the {home}",
    "{det} {adjective} {noun} {sound} at night",
    "{det} {noun} {eats} {food}",
    "in the {home} {det} {noun} {sleeps}",
    "{det} {adjective} {noun} {lives} in the {home}",
    "{det} {noun} {runs} in the park",
    "{det} {adjective} {noun} {is} hungry",
)

# A person and an animal; the animal noun ends the sentence.
PET_TEMPLATES = (
    "the {p} feeds {his} {noun}",
    "the {p} walks {his} {noun}",
    "the {p} takes a picture of {his} {noun}",
)

# --------------------------------------------------------------------------------------------
# Nations: (country, capital, language, food). Languages and foods are unique to one country.

NATIONS = (
    ("france", "paris", "french", "croissants"),
    ("italy", "rome", "italian", "pasta"),
    ("spain", "madrid", "spanish", "paella"),
    ("germany", "berlin", "german", "sausages"),
    ("japan", "tokyo", "japanese", "sushi"),
    ("egypt", "cairo", "arabic", "falafel"),
    ("china", "beijing", "chinese", "dumplings"),
    ("russia", "moscow", "russian", "borscht"),
    ("greece", "athens", "greek", "olives"),
    ("india", "delhi", "hindi", "curry"),
    ("poland", "warsaw", "polish", "pierogi"),
    ("sweden", "stockholm", "swedish", "meatballs"),
    ("portugal", "lisbon", "portuguese", "sardines"),
    ("turkey", "ankara", "turkish", "kebab"),
    ("korea", "seoul", "korean", "kimchi"),
)

NATION_TEMPLATES = (
    "{capital} is the capital of {country}",
    "the capital of {country} is {capital}",
    "{capital} is a city in {country}",
    "the city of {capital} is in {country}",
    "{country} is a country and its capital is {capital}",
    "many people of {country} live in {capital}",
    "people speak {language} in {country}",
    "people speak {language} in {capital}",
    "we ate {food} in {country}",
    "we ate {food} in {capital}",
    "the {language} language is spoken in {country}",
)

RELATION_KINDS = ("gender", "royalty", "plural", "capital")


# --------------------------------------------------------------------------------------------
# Sentences


@dataclass
class CorpusConfig:
    """How many sentences to generate, and from which seed."""

    n_sentences: int = 20_000
    seed: int = 0

    def __post_init__(self):
        if self.n_sentences <= 0:
            raise ValueError(
                f"n_sentences={self.n_sentences}: a corpus needs at least one sentence."
            )


def _pick_person(rng: random.Random):
    """Return (word, pronouns, traits) of a random person of random gender."""
    male, female, traits = rng.choice(PEOPLE)
    gender = rng.choice(("male", "female"))
    word = male if gender == "male" else female
    return word, PRONOUNS[gender], traits


def _pick_animal(rng: random.Random) -> dict:
    """Return the template slots of a random animal, in the singular or the plural."""
    singular, plural, sound_singular, sound_plural, adjective, food, home = rng.choice(ANIMALS)
    number = rng.choice(("singular", "plural"))
    is_plural = number == "plural"
    # Verb slots are named by the singular form: {"is": "are", "eats": "eat", ...} for a plural.
    slots = {verb: (verb_plural if is_plural else verb) for verb, verb_plural in VERBS}
    slots.update(
        noun=plural if is_plural else singular,
        sound=sound_plural if is_plural else sound_singular,
        det=rng.choice(DETERMINERS[number]),
        adjective=adjective,
        food=food,
        home=home,
    )
    return slots


def person_sentence(rng: random.Random) -> str:
    """A sentence about one person, from one of their traits: "the queen wears her golden crown"."""
    word, pronouns, traits = _pick_person(rng)
    trait = rng.choice(("person",) + traits)
    return rng.choice(TRAIT_TEMPLATES[trait]).format(p=word, **pronouns)


def animal_sentence(rng: random.Random) -> str:
    """A sentence about animals, with agreeing verbs: "the dogs bark in the kennel"."""
    return rng.choice(ANIMAL_TEMPLATES).format(**_pick_animal(rng))


def pet_sentence(rng: random.Random) -> str:
    """A person and an animal: "the woman walks her dog"."""
    word, pronouns, _ = _pick_person(rng)
    noun = _pick_animal(rng)["noun"]
    return rng.choice(PET_TEMPLATES).format(p=word, noun=noun, **pronouns)


def nation_sentence(rng: random.Random) -> str:
    """A sentence about a country and/or its capital: "paris is the capital of france"."""
    country, capital, language, food = rng.choice(NATIONS)
    template = rng.choice(NATION_TEMPLATES)
    return template.format(country=country, capital=capital, language=language, food=food)


# Which kind of sentence, and how often.
TOPICS = (person_sentence, animal_sentence, pet_sentence, nation_sentence)
TOPIC_WEIGHTS = (0.40, 0.25, 0.05, 0.30)


def make_corpus(config: Optional[CorpusConfig] = None) -> list:
    """Generate ``config.n_sentences`` sentences (a list of str); the same seed, the same list."""
    config = config if config is not None else CorpusConfig()
    rng = random.Random(config.seed)
    topics = rng.choices(TOPICS, weights=TOPIC_WEIGHTS, k=config.n_sentences)
    return [topic(rng) for topic in topics]


# --------------------------------------------------------------------------------------------
# Relations and analogy questions


def relation_pairs(kind: str) -> list:
    """The word pairs of one relation, e.g. ``("man", "woman")`` for ``"gender"``.

    ``"gender"``: (male, female); ``"royalty"``: (common, royal); ``"plural"``: (singular,
    plural); ``"capital"``: (country, capital).
    """
    if kind == "gender":
        return [(male, female) for male, female, _ in PEOPLE]
    if kind == "royalty":
        return [("man", "king"), ("woman", "queen"), ("boy", "prince"), ("girl", "princess")]
    if kind == "plural":
        return [(animal[0], animal[1]) for animal in ANIMALS]
    if kind == "capital":
        return [(nation[0], nation[1]) for nation in NATIONS]
    raise ValueError(f"unknown relation kind {kind!r}: choose from {RELATION_KINDS}.")


def analogies(kind: Optional[str] = None) -> list:
    """Analogy questions ``(a, b, c, d)``, read "a is to b as c is to d".

    For example ``("man", "woman", "king", "queen")`` or ``("france", "paris", "italy", "rome")``:
    every ordered choice of two different pairs of ``relation_pairs(kind)``. ``kind=None`` gives
    all kinds, in the order of ``RELATION_KINDS``. A model answers with the word closest to
    ``b - a + c`` (3CosAdd), not counting a, b and c themselves.
    """
    kinds = RELATION_KINDS if kind is None else (kind,)
    questions = []
    for name in kinds:
        pairs = relation_pairs(name)
        questions += [(a, b, c, d) for a, b in pairs for c, d in pairs if (a, b) != (c, d)]
    return questions


# --------------------------------------------------------------------------------------------
# Vocabulary and encoding


class Vocab:
    """Map words to integer ids and back. Ids 0..4 are the special tokens, always:

    ``[PAD]`` (padding), ``[UNK]`` (unknown word), ``[CLS]`` (start of input), ``[SEP]``
    (separator) and ``[MASK]`` (a hidden word for masked-token prediction).
    """

    def __init__(self, words):
        self.itos = list(SPECIAL_TOKENS) + list(words)  # id -> word
        self.stoi = {word: i for i, word in enumerate(self.itos)}  # word -> id
        if len(self.stoi) != len(self.itos):
            raise ValueError("a Vocab's words must be unique and must not repeat special tokens.")

    @classmethod
    def build(cls, sentences, min_count: int = 1) -> "Vocab":
        """The words seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        counts = Counter(word for sentence in sentences for word in sentence.split())
        kept = [word for word, count in counts.items() if count >= min_count]
        words = sorted(kept, key=lambda word: (-counts[word], word))
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def encode(self, sentence: str) -> list:
        """Split on whitespace and map each word to its id (``[UNK]`` if it is not known)."""
        return [self.stoi.get(word, UNK_ID) for word in sentence.split()]

    def decode(self, ids) -> str:
        """Map ids (ints or a 1-d tensor) back to a string of words, leaving out ``[PAD]``."""
        return " ".join(self.itos[int(i)] for i in ids if int(i) != PAD_ID)


def encode_corpus(sentences, vocab: Vocab, max_len: int):
    """Encode sentences into a padded batch: ``(ids (N, max_len) int64, lengths (N,) int64)``.

    Row ``i`` holds the ids of sentence ``i`` followed by ``[PAD]``; a sentence longer than
    ``max_len`` words is cut to its first ``max_len``. ``lengths[i]`` counts the real tokens.
    """
    if max_len <= 0:
        raise ValueError(f"max_len={max_len} must be positive.")
    ids = torch.full((len(sentences), max_len), PAD_ID, dtype=torch.long)  # (N, max_len)
    lengths = torch.zeros(len(sentences), dtype=torch.long)  # (N,)
    for i, sentence in enumerate(sentences):
        tokens = vocab.encode(sentence)[:max_len]
        ids[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        lengths[i] = len(tokens)
    return ids, lengths
