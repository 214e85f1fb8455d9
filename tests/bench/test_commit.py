"""bench/commit.py commits a trained factory and reports its peak memory, and that of
opening what it committed."""

from __future__ import annotations

from bench import commit


def test_the_commit_bench_commits_and_reports_its_peak():
    table = commit.main(["--vectors", "3000", "--factory", "IVF16,SQ8"])
    row = table.splitlines()[-1].strip("|").split("|")
    vectors, factory, raw, before, after, _seconds, opened, _open_s = (cell.strip() for cell in row)
    assert (vectors, factory) == ("3,000", "IVF16,SQ8")
    assert float(raw) > 0 and float(after) >= float(before) > 0 and float(opened) > 0
