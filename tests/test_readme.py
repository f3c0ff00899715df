"""The README is a front door: short, its links resolve, and every page of
``docs/`` can be reached from it by following links."""
import glob
import os.path as osp
import re

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# [text](target) with a relative target; anchors and web links are not files
LINK = re.compile(r'\]\(([^)\s#]+)(?:#[^)\s]*)?\)')
MAX_README_LINES = 300


def relative_links(path):
    """The repository files a Markdown file links to (absolute paths)."""
    text = open(path, encoding='utf-8').read()
    links = []
    for target in LINK.findall(text):
        if re.match(r'^[a-z]+:', target):  # https:, mailto:
            continue
        links.append(osp.normpath(osp.join(osp.dirname(path), target)))
    return links


def reachable_pages(start):
    """Markdown files reachable from ``start`` through relative links."""
    seen, todo = set(), [start]
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        todo.extend(link for link in relative_links(page)
                    if link.endswith('.md') and osp.isfile(link))
    return seen


def test_readme_is_at_most_300_lines():
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert len(lines) <= MAX_README_LINES, len(lines)


def test_readme_and_docs_links_resolve():
    pages = [osp.join(REPO, 'README.md')] + glob.glob(
        osp.join(REPO, 'docs', '**', '*.md'), recursive=True)
    broken = [(osp.relpath(page, REPO), osp.relpath(link, REPO))
              for page in pages for link in relative_links(page)
              if not osp.exists(link)]
    assert not broken


def test_every_docs_page_is_reachable_from_the_readme():
    pages = set(glob.glob(osp.join(REPO, 'docs', '**', '*.md'),
                          recursive=True))
    unreachable = pages - reachable_pages(osp.join(REPO, 'README.md'))
    assert not sorted(osp.relpath(p, REPO) for p in unreachable)
