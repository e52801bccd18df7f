"""Write ``questions.csv``: Stack Overflow-style questions labelled HQ, LQ_EDIT or LQ_CLOSE, all written here.

Run from the repository root: ``python examples/stackoverflow/generate.py`` (``--rows N``, ``--seed S``,
``--out FILE``). The output is deterministic: the same arguments write the same file, byte for byte, so the
committed ``questions.csv`` is this script's output with the defaults.

The default of 200 rows gives the walk-through's ``novactl prepare --stackoverflow`` split (0.4, 0.4, 0.2)
80 SFT, 80 RFT and 40 evaluation rows: at least one ``global_batch_size`` of rows for the Nova 2 Lite base
recipes (SFT 32, RFT 64), which preflight requires.

Labels, as in the public question-quality task this example imitates:

- ``HQ``: a clear title, the versions, what was tried, the exact error;
- ``LQ_EDIT``: a real problem, badly written (no capitals, no punctuation, pasted code, no question);
- ``LQ_CLOSE``: off-topic, opinion-based, too broad, or a request to do someone's work.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")

# (tag, language or tool, a task in it, the code tried, the exact error it gives)
PROBLEMS: tuple[tuple[str, str, str, str, str], ...] = (
    ("python", "Python 3.12", "read a 20 GB log file line by line", "data = open(path).read()", "MemoryError"),
    (
        "python",
        "Python 3.11",
        "parse dates like 2026-01-31T10:00:00Z",
        "datetime.strptime(s, '%Y-%m-%d')",
        "ValueError: unconverted data remains: T10:00:00Z",
    ),
    (
        "pandas",
        "pandas 2.2",
        "merge two frames on an id column",
        "a.merge(b, on='id')",
        "the result has more rows than either input",
    ),
    (
        "numpy",
        "NumPy 1.26",
        "compare two arrays in an if",
        "if a == b:",
        "ValueError: The truth value of an array with more than one element is ambiguous",
    ),
    ("javascript", "Node.js 20", "sort an array of numbers", "[10, 9, 1].sort()", "the result is [1, 10, 9]"),
    (
        "javascript",
        "Chrome 120",
        "wait for several fetch calls",
        "urls.forEach(async u => await fetch(u))",
        "the code after the loop runs before any response arrives",
    ),
    (
        "typescript",
        "TypeScript 5.3",
        "narrow a union type in a filter",
        "items.filter(x => x !== null)",
        "Type '(Item | null)[]' is not assignable to type 'Item[]'",
    ),
    (
        "java",
        "Java 21",
        "compare two strings from user input",
        'if (answer == "yes")',
        "the branch never runs even when I type yes",
    ),
    (
        "java",
        "Spring Boot 3.2",
        "inject a service into a controller",
        "@Autowired private UserService users;",
        "NoSuchBeanDefinitionException: No qualifying bean of type 'UserService'",
    ),
    (
        "c++",
        "g++ 13",
        "store pointers to elements of a vector",
        "int* p = &v[0]; v.push_back(4);",
        "reading *p afterwards prints garbage",
    ),
    (
        "c",
        "gcc 12 on Linux",
        "copy a string into a buffer",
        "char buf[8]; strcpy(buf, name);",
        "*** stack smashing detected ***: terminated",
    ),
    (
        "rust",
        "Rust 1.75",
        "push to a Vec while iterating over it",
        "for x in &v { v.push(*x); }",
        "error[E0502]: cannot borrow `v` as mutable because it is also borrowed as immutable",
    ),
    (
        "go",
        "Go 1.21",
        "stop a worker goroutine when the client disconnects",
        "results <- compute(r)",
        "pprof shows thousands of goroutines blocked on the channel send",
    ),
    (
        "kotlin",
        "Kotlin 1.9 on Android 14",
        "run a loop while an activity is visible",
        "GlobalScope.launch { poll() }",
        "after a screen rotation two loops run",
    ),
    (
        "sql",
        "PostgreSQL 15",
        "select the latest order per customer",
        "SELECT * FROM orders GROUP BY customer_id",
        'ERROR: column "orders.id" must appear in the GROUP BY clause',
    ),
    (
        "mysql",
        "MySQL 8.0",
        "insert a name from a form",
        "INSERT INTO users VALUES ($name)",
        "ERROR 1054: Unknown column 'alice' in 'field list'",
    ),
    ("php", "PHP 8.2", "read a JSON request body", "$data = $_POST['name'];", 'Warning: Undefined array key "name"'),
    (
        "bash",
        "bash 5.2",
        "loop over file names that contain spaces",
        "for f in $(ls); do wc -l $f; done",
        "wc: my: No such file or directory",
    ),
    (
        "docker",
        "Docker 24 on Ubuntu 22.04",
        "see files edited on the host inside a container",
        "docker run -p 8000:8000 myimage",
        "edits in ./src never show up until I rebuild",
    ),
    (
        "git",
        "git 2.43",
        "undo the last commit but keep its changes",
        "git reset --hard HEAD~1",
        "the changes were gone from my working tree too",
    ),
    ("css", "Firefox 121", "center a div vertically", "margin: auto;", "it is centered horizontally only"),
    (
        "react",
        "React 18",
        "update state from a fetch in useEffect",
        "useEffect(async () => { ... }, [])",
        "Warning: useEffect must not return anything besides a function",
    ),
    ("regex", "Python re", "match an email address", "[a-z]+@[a-z]+", "it rejects john.doe@mail.example.com"),
    (
        "c#",
        ".NET 8",
        "call an async method from Main",
        "var result = GetAsync().Result;",
        "the console app deadlocks in a WinForms host",
    ),
)

# What an opinion question compares a tag with.
LANGUAGES = ("python", "javascript", "typescript", "java", "c++", "c", "rust", "go", "kotlin", "php", "c#")

HQ_TITLES = (
    "How do I {task} in {lang}?",
    '{lang}: "{error_short}" when I try to {task}',
    'Why does `{code}` give "{error_short}"?',
    "What is the idiomatic way to {task} ({lang})?",
)
HQ_OPENINGS = (
    "I need to {task}. I am on {lang}.",
    "On {lang} I am trying to {task}.",
    "My goal is to {task} ({lang}).",
)
HQ_TRIED = (
    "Minimal example:\n\n    {code}\n\nThis fails with:\n\n    {error}\n\nI read the documentation for this and "
    "searched for the message, but the answers I found are for older versions. What is the correct approach?",
    "What I tried:\n\n    {code}\n\nResult: {error}. I expected it to work because the same pattern works "
    "elsewhere in my code. What am I missing, and is there a reference that explains it?",
    "Here is the smallest code that shows it:\n\n    {code}\n\nand the output is `{error}`. I checked that the "
    "input is what I think it is. How should this be written instead?",
)
EDIT_TITLES = (
    "{tag} {task_short} not working",
    "{tag} error",
    "help {tag} {task_short}",
    "{error_short} ???",
    "why {tag} {task_short} wrong",
)
EDIT_BODIES = (
    "i try to {task} but not work\n{code}\n{error}",
    "{code}\nget {error} what is wrong",
    "hi all i am new in {tag}. i want {task}. i write {code} and it give error {error} plz help",
    "{error}\n\nmy code {code}",
    "when i {task} it show {error} i dont understand, i use {lang} {code}",
)
CLOSE_ROWS: tuple[tuple[str, str], ...] = (
    ("best {tag} book?", "what is the best book to learn {tag} fast. also which is better, videos or books"),
    ("Is {tag} better than {other}", "Which one is better in your opinion? Discuss."),
    ("do my {tag} assignment", "Write a {tag} program for a library management system with all features. urgent!!!"),
    ("{tag} code not work", "i write code in {tag} but it dont work. plz fix"),
    ("need job advice", "Should I learn {tag} or {other} to get a job faster? Please answer fast."),
    ("best laptop for {tag}??", "what laptop should i buy for {tag} coding, budget 500"),
    ("{tag} project ideas", "give me 10 project ideas in {tag} for my portfolio"),
    ("how to become senior {tag} developer", "what should i learn to be senior in one year"),
    ("send me {tag} source code", "anyone have full source code of a chat app in {tag}? send link"),
    ("is {tag} dead", "my friend says nobody uses {tag} anymore. is it true?"),
    ("hack wifi with {tag}", "how to get the password of my neighbours wifi using {tag}"),
    ("{tag} vs {other} performance", "which is faster in general, {tag} or {other}? want a simple answer"),
)


def _short(text: str, words: int) -> str:
    return " ".join(text.split()[:words]).rstrip(":,.")


def _error_short(error: str) -> str:
    """A short error as a title quotes it: all of a short one, else the name before its colon."""
    if len(error.split()) <= 8:
        return error.rstrip(".")
    head = error.split(":", 1)[0]
    return head if ":" in error and len(head.split()) <= 4 else _short(error, 6)


def _fields(problem: tuple[str, str, str, str, str], rng: random.Random) -> dict[str, str]:
    tag, lang, task, code, error = problem
    others = [name for name in LANGUAGES if name != tag]
    return {
        "tag": tag,
        "lang": lang,
        "task": task,
        "task_short": _short(task, 3),
        "code": code,
        "error": error,
        "error_short": _error_short(error),
        "other": rng.choice(others),
    }


def _hq(values: dict[str, str], rng: random.Random) -> tuple[str, str]:
    title = rng.choice(HQ_TITLES).format(**values)
    body = rng.choice(HQ_OPENINGS).format(**values) + "\n\n" + rng.choice(HQ_TRIED).format(**values)
    return title[0].upper() + title[1:], body


def _edit(values: dict[str, str], rng: random.Random) -> tuple[str, str]:
    body = rng.choice(EDIT_BODIES).format(**values)
    if rng.random() < 0.5:
        body = body.lower()
    return rng.choice(EDIT_TITLES).format(**values).lower(), body


def _close(values: dict[str, str], rng: random.Random) -> tuple[str, str]:
    title, body = rng.choice(CLOSE_ROWS)
    return title.format(**values), body.format(**values)


WRITERS: dict[str, Callable[[dict[str, str], random.Random], tuple[str, str]]] = {
    "HQ": _hq,
    "LQ_EDIT": _edit,
    "LQ_CLOSE": _close,
}


def rows(count: int, seed: int) -> list[dict[str, str]]:
    """``count`` rows with distinct titles and bodies, the labels in turn (as balanced as ``count`` allows)."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 2, 10, 0, 0)
    seen: set[tuple[str, str]] = set()
    out: list[dict[str, str]] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > count * 200:
            raise SystemExit(f"--rows {count}: the templates yield fewer distinct questions; ask for fewer")
        label = LABELS[len(out) % len(LABELS)]
        values = _fields(rng.choice(PROBLEMS), rng)
        title, body = WRITERS[label](values, rng)
        key = (title.casefold(), body.casefold())
        if key in seen:
            continue
        seen.add(key)
        created = start + timedelta(hours=7 * len(out) + rng.randrange(7))
        out.append(
            {
                "Id": str(1001 + len(out)),
                "Title": title,
                "Body": body,
                "Tags": f"<{values['tag']}>",
                "CreationDate": created.strftime("%Y-%m-%d %H:%M:%S"),
                "Y": label,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="how many questions (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default %(default)s)")
    parser.add_argument("--out", type=Path, default=HERE / "questions.csv", help="the CSV to write")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows {args.rows}: at least 1")
    table = rows(args.rows, args.seed)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    print(f"{args.out}: {len(table)} questions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
