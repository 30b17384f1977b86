"""Every citation of the chapter in the code, pages and docs points to something it has.

The app teaches from one text, shared/reference/chapter6-feedforward-deep-networks.md. A
citation ("Eq. 6.4", "Fig. 6.7", "section 6.3.2", "§6.4.5", "Algorithm 6.2", "Example 6.1.1")
is checked twice: the chapter must have that equation, figure, section heading, algorithm or
example; and where the clause around a citation names a topic (softmax, mixture, XOR, …) the
cited part of the chapter must mention it too, so that an equation number cannot point at the
wrong equation (a best effort: a clause may name a topic the check does not list).

The test reads whatever files exist under the trees below, so pages added later are held to
the same rule. Failures name file:line and the citation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHAPTER_NAME = "chapter6-feedforward-deep-networks.md"
TREES = ("app", "engine", "jobs", "static", "templates", "docs", "labs")  # labs: if it exists
FILES = ("README.md",)
SUFFIXES = {".py", ".js", ".mjs", ".html", ".css", ".md", ".txt", ".json", ".toml", ".jinja",
            ".yaml", ".yml"}
SKIPPED_PARTS = {"vendor", "__pycache__", "node_modules"}

# One citation: a kind keyword, then a number, then more numbers joined by a list
# ("Figs. 6.6–6.8", "Fig. 6.5 and 6.7", "Algorithm 6.1 / 6.3", "Eqs. (6.4), (6.5)").
NUMBER = r"(?:\(\d+(?:\.\d+)*\)|\d+(?:\.\d+)*)"
KINDS = {
    "equation": r"Eq(?:uation)?s?\.?",
    "figure": r"Fig(?:ure)?s?\.?",
    "section": r"(?:Sec(?:tion)?s?\.?|§§?)",
    "algorithm": r"Alg(?:orithm)?s?\.?",
    "example": r"Examples?",
    "table": r"Tables?",
}
JOINS = (",", "and", "or", "to", "/", "–", "—", "-")
RANGES = {"to", "–", "—", "-"}
JOINER = r"\s*(?:" + "|".join(re.escape(j) for j in JOINS) + r")\s*"
CITATION = re.compile(
    r"(?<![\w.])(?P<keyword>" + "|".join(f"(?:{k})" for k in KINDS.values()) + r")"
    r"(?:(?<=[.§])\s*|\s+)"  # "Fig.6.8", "§6.3", "Fig 6.2"; never "fig67"
    r"(?P<numbers>" + NUMBER + r"(?:" + JOINER + r"(?!\d+\s*[a-zA-Z%])" + NUMBER + r")*)",
    re.IGNORECASE,
)
# Where a cited line's topic words are looked for: the clause around the citation.
CLAUSE_BREAK = re.compile(r"[,;:()\[\]{}\"<>]|\.\s")
KIND_PATTERNS = {kind: re.compile(rf"^(?:{pattern})$", re.IGNORECASE)
                 for kind, pattern in KINDS.items()}

# Words that tie a citation to content: when a citation's clause names one, the cited part of the
# chapter must name it too (XOR is in none, so no citation may sit beside it).
TOPICS = {
    "softmax": ("softmax",),
    "sigmoid": ("sigmoid",),
    "bernoulli": ("bernoulli",),
    "mixture": ("mixture",),
    "gaussian": ("gaussian",),
    "precision": ("precision",),
    "median": ("median",),
    "hessian": ("hessian",),
    "maxout": ("maxout",),
    "rbf": ("rbf", "radial basis"),
    "leaky": ("leaky",),
    "prelu": ("prelu", "parametric relu"),
    "softplus": ("softplus",),
    "xor": ("xor",),
}


@dataclass(frozen=True)
class Citation:
    path: str
    line: int
    text: str
    kind: str
    number: str
    context: str

    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.text!r}"


def kind_of(keyword: str) -> str:
    for kind, pattern in KIND_PATTERNS.items():
        if pattern.match(keyword):
            return kind
    raise AssertionError(f"no kind for {keyword!r}")


def expand(numbers: str) -> list[str]:
    """The numbers of one citation, ranges included ("6.6–6.8" → 6.6, 6.7, 6.8)."""
    parts = re.split(r"(" + JOINER + r")", numbers)
    found: list[str] = []
    pending_range = False
    for part in parts:
        stripped = part.strip()
        if not stripped:
            continue
        if stripped in JOINS:
            pending_range = stripped in RANGES
            continue
        number = stripped.strip("()")
        if pending_range and found:
            start, end = found[-1].rsplit(".", 1), number.rsplit(".", 1)
            if len(start) == len(end) == 2 and start[0] == end[0]:
                for middle in range(int(start[1]) + 1, int(end[1])):
                    found.append(f"{start[0]}.{middle}")
        found.append(number)
        pending_range = False
    return found


# Chapter numbers written without a keyword are read too: a subsection number ("6.3.2", as in
# a lab's data), an equation number in parentheses ("(6.4)", as beside a typeset equation) or
# a number after "chapter". A version ("v6.3.2", "==6.3.2") is none of these.
IMPLICIT = re.compile(
    r"(?<![\w.\-=@])(?:(?P<section>6\.\d+\.\d+(?:\.\d+)*)|\((?P<equation>6\.\d+)\)"
    r"|chapter\s+(?P<chapter>6\.\d+(?:\.\d+)*))(?![\w.])",
    re.IGNORECASE,
)
# A citation of another document names it just before: "RFC 9110, section 9.3.2".
OTHER_SOURCE = re.compile(r"\b(?:RFC|PEP|ISO|IEC|ECMA|WCAG|IEEE)[\s-]*\d[\w.]*\W*$",
                          re.IGNORECASE)


def citations_in(text: str, path: str) -> list[Citation]:
    """Every citation in one file's text, one entry per cited number."""
    found = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        spans = []
        for match in CITATION.finditer(line):
            spans.append(match.span())
            keyword = match.group("keyword")
            kind = kind_of(keyword)
            numbers = expand(match.group("numbers"))
            # "examples 0", "example 3": plain words; a capitalised keyword or a dotted
            # number makes it a citation ("Algorithm 1" is one, of some other text).
            if keyword[0].islower() and not any("." in n for n in numbers):
                continue
            if OTHER_SOURCE.search(line[max(0, match.start() - 40):match.start()]):
                continue
            context = clause_around(line, match.start(), match.end())
            found.extend(Citation(path, line_number, match.group(0), kind, number, context)
                         for number in numbers)
        for match in IMPLICIT.finditer(line):
            if any(a <= match.start() < b for a, b in spans):
                continue
            kind = "equation" if match.group("equation") else "section"
            number = match.group("equation") or match.group("section") or match.group("chapter")
            context = clause_around(line, match.start(), match.end())
            found.append(Citation(path, line_number, match.group(0), kind, number, context))
    return found


def clause_around(line: str, start: int, end: int) -> str:
    """The clause holding a citation, and the clause before it when the citation stands
    alone in parentheses ("a softmax output (Eq. 6.4)")."""
    spans = [m.span() for m in CITATION.finditer(line)]  # "Eq. 6.4" holds no clause break
    breaks = [0] + [m.end() for m in CLAUSE_BREAK.finditer(line)
                    if not any(a <= m.start() < b for a, b in spans)] + [len(line) + 1]
    index = max(i for i, b in enumerate(breaks) if b <= start)
    clause = line[breaks[index]:breaks[index + 1]]
    rest = CITATION.sub(" ", clause)
    if not re.sub(r"\b(?:and|or|see|cf|also)\b|[^a-zA-Z]", "", rest) and index > 0:
        clause = line[breaks[index - 1]:breaks[index]] + clause
    return clause


def source_files() -> list[Path]:
    paths = [ROOT / name for name in FILES if (ROOT / name).is_file()]
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            if (path.is_file() and path.suffix in SUFFIXES
                    and not SKIPPED_PARTS.intersection(path.relative_to(ROOT).parts)):
                paths.append(path)
    return paths


def all_citations() -> list[Citation]:
    found = []
    for path in source_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        found.extend(citations_in(text, str(path.relative_to(ROOT))))
    return found


# ----- the chapter: what it has, and the text of each part --------------------------------


def chapter_path() -> Path:
    for candidate in (ROOT / "shared" / "reference" / CHAPTER_NAME,
                      ROOT.parent / "shared" / "reference" / CHAPTER_NAME,
                      Path("/work/shared/reference") / CHAPTER_NAME):
        if candidate.is_file():
            return candidate
    raise AssertionError(f"the chapter {CHAPTER_NAME} is not in shared/reference")


@dataclass
class Chapter:
    """The chapter's citable parts, each with the text a citation of it may refer to."""

    sections: dict[str, str]
    equations: dict[str, str]
    figures: dict[str, str]
    algorithms: dict[str, str]
    examples: dict[str, str]
    tables: dict[str, str]

    def parts(self, kind: str) -> dict[str, str]:
        return {"section": self.sections, "equation": self.equations, "figure": self.figures,
                "algorithm": self.algorithms, "example": self.examples,
                "table": self.tables}[kind]


def read_chapter() -> Chapter:
    lines = chapter_path().read_text(encoding="utf-8").splitlines()
    headings = [(index, len(m.group(1)), m.group(2), m.group(3))
                for index, line in enumerate(lines)
                if (m := re.match(r"^(#+)\s+(?:(\d+(?:\.\d+)+)\s+)?(.*)$", line))]

    def body(start: int, stop_at: int | None = None) -> str:
        return "\n".join(lines[start:stop_at])

    # A numbered section runs to the next heading with a number of the same depth or less.
    sections: dict[str, str] = {}
    numbered = [(index, number) for index, _, number, _ in headings if number]
    for position, (index, number) in enumerate(numbered):
        depth = number.count(".")
        stop = next((later for later, other in numbered[position + 1:]
                     if other.count(".") <= depth), len(lines))
        sections[number] = body(index, stop)
    # An equation's text: the paragraphs just before and after it, within its part
    # (numbered or not, e.g. "## Softmax"), which say what the equation is.
    starts = [index for index, *_ in headings] + [len(lines)]
    equations: dict[str, str] = {}
    for index, line in enumerate(lines):
        for number in re.findall(r"\\tag\{(6\.\d+)\}|\((6\.\d+)\)\s*\$\$", line):
            label = number[0] or number[1]
            start = max((h for h in starts if h <= index), default=0)
            stop = min(h for h in starts if h > index)
            before = [i for i in range(start, index) if lines[i].strip()][-2:]
            after = [i for i in range(index + 1, stop) if lines[i].strip()][:2]
            equations[label] = "\n".join(lines[i] for i in [*before, index, *after])
    figures = {m.group(1): line for line in lines
               if (m := re.match(r"^Figure (6\.\d+):", line))}
    algorithms = {}
    for index, line in enumerate(lines):
        if m := re.match(r"^\*\*Algorithm (6\.\d+)\*\*", line):
            algorithms[m.group(1)] = body(index, index + 40)
    examples = {m.group(1): body(index, index + 25) for index, line in enumerate(lines)
                if (m := re.match(r"^#+\s*Example (6\.\d+\.\d+)", line))}
    tables = {m.group(1): line for line in lines if (m := re.match(r"^Table (6\.\d+):", line))}
    return Chapter(sections, equations, figures, algorithms, examples, tables)


CHAPTER = read_chapter()


# ----- the checks -------------------------------------------------------------------------


def test_the_chapter_parses_into_its_parts():
    """The reader finds what the chapter has: sections 6.1-6.9 with their subsections,
    equations (6.1)-(6.16), Figures 6.1-6.10, Algorithms 6.1-6.4 and Example 6.1.1."""
    assert {f"6.{n}" for n in range(1, 10)} <= set(CHAPTER.sections)
    assert {"6.3.1", "6.3.2", "6.3.3", "6.3.4", "6.4.1", "6.4.5", "6.5.1"} <= set(
        CHAPTER.sections)
    assert set(CHAPTER.equations) == {f"6.{n}" for n in range(1, 17)}
    assert set(CHAPTER.figures) == {f"6.{n}" for n in range(1, 11)}
    assert set(CHAPTER.algorithms) == {"6.1", "6.2", "6.3", "6.4"}
    assert set(CHAPTER.examples) == {"6.1.1"}
    assert CHAPTER.tables == {}
    assert "softmax" in CHAPTER.equations["6.4"].lower()
    assert "mixture" in CHAPTER.sections["6.3.2"].lower()


KNOWN_FORMS = [
    ("# Eq. 6.5: dJ/da = p - e_y", [("equation", "6.5")]),
    ("(Eq. (6.4)) and Equation 6.3", [("equation", "6.4"), ("equation", "6.3")]),
    ("eqs. 6.4, 6.5 and 6.6", [("equation", n) for n in ("6.4", "6.5", "6.6")]),
    ("Figs. 6.6–6.8 and Algorithms 6.1-6.4",
     [("figure", "6.6"), ("figure", "6.7"), ("figure", "6.8")]
     + [("algorithm", f"6.{n}") for n in range(1, 5)]),
    ("Fig. 6.5 and 6.7", [("figure", "6.5"), ("figure", "6.7")]),
    ("Figs.6.8 and 6.6", [("figure", "6.8"), ("figure", "6.6")]),
    ("Figure 6.10", [("figure", "6.10")]),
    ("section 6.3.2, Section 6.4, sec. 6.8, Sec 6.1, §6.4.5, § 6.3",
     [("section", n) for n in ("6.3.2", "6.4", "6.8", "6.1", "6.4.5", "6.3")]),
    ("sections 6.3.1 and 6.3.2", [("section", "6.3.1"), ("section", "6.3.2")]),
    ("(Algorithm 6.1 / 6.3)", [("algorithm", "6.1"), ("algorithm", "6.3")]),
    ("g ← g Wᵀ (Alg. 6.2)", [("algorithm", "6.2")]),
    ("Example 6.1.1 (Fig. 6.1)", [("example", "6.1.1"), ("figure", "6.1")]),
    ("Table 6.1", [("table", "6.1")]),
    ("Adam as in Kingma & Ba's Algorithm 1", [("algorithm", "1")]),
    ('title="Eq. 6.29">', [("equation", "6.29")]),
    ("section 6.2.2.4)", [("section", "6.2.2.4")]),
    ("Example 6.1.1, Examples 2 and 3", [("example", "6.1.1"), ("example", "2"),
                                        ("example", "3")]),
    # chapter numbers without a keyword are read as sections and equations
    ('Section("6.3.2", "Loss function")', [("section", "6.3.2")]),
    ('"6.4.5", (6.11) and chapter 6.8', [("section", "6.4.5"), ("equation", "6.11"),
                                        ("section", "6.8")]),
    # not the chapter's: other documents' sections, versions, plain numbers
    ("(RFC 9110, section 9.3.2); PEP 8 section 4", []),
    ("plotly==6.3.2, swagger-ui-6.3.2, v6.3.2, math.sqrt(6.0 / n), load 3.0-6.6", []),
    # not citations: words that merely contain a keyword, numbers that are not its own
    ("makeExample(1); figure.width = 6; prefix.section; fig67; examples 0; example 3", []),
    ("see Fig. 6.2 - 3 points", [("figure", "6.2")]),
]


@pytest.mark.parametrize(("text", "expected"), KNOWN_FORMS)
def test_the_pattern_finds_every_form_of_citation(text, expected):
    found = [(c.kind, c.number) for c in citations_in(text, "example.py")]
    assert found == expected


def test_a_wrong_citation_fails_with_its_place():
    """The check itself: wrong numbers and a topic the cited part lacks are reported."""
    text = "a\n# softmax (Eq. 6.29)\nXOR (section 6.1), Fig. 6.11 and Fig. 6.2"
    assert check(citations_in(text, "x.py")) == [
        "x.py:2: 'Eq. 6.29': the chapter has no equation 6.29",
        "x.py:3: 'Fig. 6.11': the chapter has no figure 6.11",
        "x.py:3: 'section 6.1': section 6.1 of the chapter does not mention xor",
    ]
    assert check(citations_in("softmax (Eq. 6.3)", "y.js")) == [
        "y.js:1: 'Eq. 6.3': equation 6.3 of the chapter does not mention softmax"]
    assert check(citations_in("a softmax output (Eq. 6.4); Bernoulli (Eq. 6.3)", "y.js")) == []
    assert check(citations_in("mixture density (section 6.3.2)", "z.html")) == []
    assert check(citations_in("mixture density (section 6.3.1)", "z.html")) == [
        "z.html:1: 'section 6.3.1': section 6.3.1 of the chapter does not mention mixture"]
    assert check(citations_in("the conditional median (section 6.2)", "m.js")) == [
        "m.js:1: 'section 6.2': section 6.2 of the chapter does not mention median"]
    assert check(citations_in("the conditional median (sections 6.2 and 6.3.2)", "m.js")) == []
    # numbers without a keyword are held to the same rule
    assert check(citations_in('Lab("mixture", "6.2.2.4")\nsoftmax = e^a / Σ e^a  (6.29)',
                              "labs.py")) == [
        "labs.py:1: '6.2.2.4': the chapter has no section 6.2.2.4",
        "labs.py:2: '(6.29)': the chapter has no equation 6.29",
    ]


def check(citations: list[Citation]) -> list[str]:
    """One message per citation that the chapter does not back. A topic named beside a
    citation of several parts ("sections 6.2 and 6.3.2") needs to be in one of them."""
    problems = []
    groups: dict[tuple[str, int, str], list[Citation]] = {}
    for citation in citations:
        parts = CHAPTER.parts(citation.kind)
        if citation.number not in parts:
            problems.append(f"{citation.where()}: the chapter has no {citation.kind} "
                            f"{citation.number}")
            continue
        groups.setdefault((citation.path, citation.line, citation.text), []).append(citation)
    for group in groups.values():
        first = group[0]
        cited_text = " ".join(CHAPTER.parts(c.kind)[c.number] for c in group).lower()
        clause = first.context.lower()
        numbers = ", ".join(c.number for c in group)
        for topic, words in TOPICS.items():
            if any(re.search(rf"\b{re.escape(w)}\b", clause) for w in words) and not any(
                    w in cited_text for w in words):
                problems.append(f"{first.where()}: {first.kind} {numbers} "
                                f"of the chapter does not mention {topic}")
    return problems


def test_every_citation_in_the_code_pages_and_docs_is_in_the_chapter():
    citations = all_citations()
    # the sweep sees the trees (a guard against a pattern or path that finds nothing)
    assert len(citations) > 50
    assert {c.kind for c in citations} >= {"equation", "figure", "section", "algorithm"}
    problems = check(citations)
    assert not problems, "citations the chapter does not back:\n" + "\n".join(problems)
