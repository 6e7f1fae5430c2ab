/* words.c — adjectives and nouns for NIAH keys ("{adjective}-{noun}"):
 * a built-in list, a plain word list, or WordNet's index files. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/niah.h"

/* ---- built-in ------------------------------------------------------------ */

static const char *const k_adjectives[] = {
    "amber",    "ancient",  "angry",    "bitter",   "black",    "blue",     "bold",     "brave",
    "bright",   "broad",    "brown",    "busy",     "calm",     "careful",  "cheap",    "clean",
    "clever",   "cold",     "cool",     "crisp",    "cruel",    "curious",  "damp",     "dark",
    "deep",     "dry",      "dusty",    "eager",    "early",    "easy",     "empty",    "fair",
    "famous",   "fancy",    "fast",     "fierce",   "flat",     "fresh",    "friendly", "frozen",
    "gentle",   "giant",    "glad",     "golden",   "grand",    "gray",     "green",    "happy",
    "hard",     "heavy",    "hidden",   "hollow",   "honest",   "huge",     "humble",   "hungry",
    "icy",      "jolly",    "kind",     "large",    "late",     "lazy",     "light",    "little",
    "lively",   "lonely",   "long",     "loud",     "lucky",    "mellow",   "mighty",   "modern",
    "narrow",   "neat",     "noble",    "odd",      "old",      "orange",   "pale",     "patient",
    "plain",    "polite",   "proud",    "purple",   "quick",    "quiet",    "rapid",    "rare",
    "red",      "rich",     "rough",    "round",    "royal",    "rusty",    "sad",      "safe",
    "salty",    "sharp",    "shiny",    "short",    "silent",   "silver",   "simple",   "sleepy",
    "slow",     "small",    "smooth",   "soft",     "sour",     "spicy",    "steady",   "steep",
    "strange",  "strong",   "sturdy",   "sunny",    "sweet",    "swift",    "tall",     "tame",
    "tender",   "thick",    "thin",     "tidy",     "tiny",     "tired",    "vast",     "violet",
    "warm",     "wary",     "weak",     "wet",      "white",    "wide",     "wild",     "windy",
    "wise",     "witty",    "wooden",   "yellow",   "young",    "zealous",
};

static const char *const k_nouns[] = {
    "anchor",   "apple",    "arrow",    "badger",   "banana",   "barrel",   "basket",   "beacon",
    "bear",     "bell",     "bicycle",  "bird",     "blanket",  "boat",     "bottle",   "bridge",
    "bucket",   "butter",   "cabin",    "camel",    "candle",   "canyon",   "carpet",   "castle",
    "cat",      "cherry",   "circle",   "cloud",    "clock",    "coast",    "comet",    "copper",
    "cotton",   "crow",     "crystal",  "desert",   "dolphin",  "door",     "dragon",   "drum",
    "eagle",    "engine",   "falcon",   "feather",  "fern",     "field",    "flame",    "flower",
    "forest",   "fox",      "garden",   "glacier",  "goat",     "hammer",   "harbor",   "hawk",
    "hill",     "horse",    "island",   "jacket",   "kettle",   "ladder",   "lake",     "lantern",
    "lemon",    "lion",     "lizard",   "meadow",   "mirror",   "monkey",   "moon",     "mountain",
    "needle",   "ocean",    "orchard",  "otter",    "owl",      "painter",  "panther",  "parrot",
    "pebble",   "pencil",   "pepper",   "piano",    "pigeon",   "pillow",   "planet",   "pocket",
    "pond",     "rabbit",   "raven",    "ribbon",   "river",    "robot",    "rocket",   "saddle",
    "sailor",   "salmon",   "shadow",   "sheep",    "shell",    "signal",   "spider",   "spoon",
    "squirrel", "star",     "stone",    "storm",    "stream",   "sugar",    "tiger",    "tower",
    "trumpet",  "tulip",    "turtle",   "valley",   "violin",   "wagon",    "walrus",   "whale",
    "window",   "wizard",   "wolf",     "zebra",
};

void swax_words_builtin(SwaxWords *w) {
    memset(w, 0, sizeof *w);
    w->adj = (char **)k_adjectives;
    w->noun = (char **)k_nouns;
    w->n_adj = (int)(sizeof k_adjectives / sizeof k_adjectives[0]);
    w->n_noun = (int)(sizeof k_nouns / sizeof k_nouns[0]);
}

void swax_words_free(SwaxWords *w) {
    if (w->owned) {
        free(w->bufs[0]);
        free(w->bufs[1]);
        free(w->adj);
        free(w->noun);
    }
    memset(w, 0, sizeof *w);
}

/* ---- loading ------------------------------------------------------------- */

/* A usable key word: lowercase ASCII letters only, 3..12 of them. */
static int good_word(const char *s, size_t n) {
    if (n < 3 || n > 12) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'a' || s[i] > 'z') return 0;
    return 1;
}

static int ends_with(const char *s, size_t n, const char *suf) {
    size_t k = strlen(suf);
    return n > k + 1 && !memcmp(s + n - k, suf, k);
}

/* English adjective endings; a heuristic for word lists without parts of speech. */
static int looks_adjective(const char *s, size_t n) {
    static const char *const suf[] = {"ous", "ful", "ive", "able", "ible", "less", "ish", "ic", "ent", "ary", 0};
    if (ends_with(s, n, "ment")) return 0; /* nouns */
    for (int i = 0; suf[i]; i++)
        if (ends_with(s, n, suf[i])) return 1;
    return 0;
}

/* Endings of verb forms, adverbs, plurals and comparatives: no use as a noun. */
static int looks_not_noun(const char *s, size_t n) {
    static const char *const suf[] = {"ed", "ing", "ly", "est", "s", "ize", "ise", "ate", "ify", 0};
    for (int i = 0; suf[i]; i++)
        if (ends_with(s, n, suf[i])) return 1;
    return 0;
}

/* Scans one file into w (adjectives and nouns point into its text, kept in
 * w->bufs[slot]): each line's first whitespace-separated field is a word.
 * pos: 'a' or 'n' for a WordNet index, 0 for a plain list (heuristic).
 * WordNet's licence block (lines starting with spaces) yields no words. */
static int collect_file(const char *path, int pos, int slot, SwaxWords *w) {
    char *data = NULL;
    size_t len = 0;
    SWAX_TRY(swax_read_file(path, &data, &len));
    w->bufs[slot] = data;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += data[i] == '\n';
    char **adj = realloc(w->adj, sizeof(char *) * (w->n_adj + lines));
    if (adj) w->adj = adj;
    char **noun = realloc(w->noun, sizeof(char *) * (w->n_noun + lines));
    if (noun) w->noun = noun;
    if (!adj || !noun) return swax_error(SWAX_E_NOMEM, "%s: word list", path);
    size_t p = 0;
    while (p < len) {
        size_t e = p;
        while (e < len && data[e] != '\n') e++;
        size_t q = p;
        while (q < e && data[q] != ' ' && data[q] != '\t' && data[q] != '\r') q++;
        if (q > p && good_word(data + p, q - p)) {
            data[q] = 0;
            if (pos ? pos == 'a' : looks_adjective(data + p, q - p))
                w->adj[w->n_adj++] = data + p;
            else if (pos == 'n' || !looks_not_noun(data + p, q - p))
                w->noun[w->n_noun++] = data + p;
        }
        p = e + 1;
    }
    return 0;
}

int swax_words_load(const char *path, SwaxWords *w) {
    memset(w, 0, sizeof *w);
    w->owned = 1;
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0) {
        rc = swax_error(SWAX_E_INPUT, "%s: no such word list", path);
    } else if (S_ISDIR(st.st_mode)) {
        char pa[4096], pn[4096];
        rc = swax_path_join(pa, sizeof pa, path, "index.adj");
        if (!rc) rc = swax_path_join(pn, sizeof pn, path, "index.noun");
        if (!rc && (stat(pa, &st) != 0 || stat(pn, &st) != 0))
            rc = swax_error(SWAX_E_INPUT, "%s: a folder of words must hold WordNet's index.adj and index.noun", path);
        if (!rc) rc = collect_file(pa, 'a', 0, w);
        if (!rc) rc = collect_file(pn, 'n', 1, w);
    } else {
        rc = collect_file(path, 0, 0, w);
    }
    if (!rc && (w->n_adj < 20 || w->n_noun < 20))
        rc = swax_error(SWAX_E_INPUT, "%s: only %d adjectives and %d nouns usable as keys (need 20 of each)", path,
                        w->n_adj, w->n_noun);
    if (rc) swax_words_free(w);
    return rc;
}
