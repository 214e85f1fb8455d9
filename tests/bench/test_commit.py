"""bench/commit.py commits a trained factory, removes a shape, and reports the peak memory
of each step, of opening and checking the result, and of reopening it after a crash in a
compaction."""

from __future__ import annotations

from bench import commit


def test_the_commit_bench_commits_and_reports_its_peak():
    table = commit.main(["--vectors", "3000", "--factory", "IVF16,SQ8"])
    row = table.splitlines()[-1].strip("|").split("|")
    cells = [cell.strip() for cell in row]
    vectors, factory, raw, before, after, _, after_removal, _ = cells[:8]
    opened, _, checked, _, recovered, _ = cells[8:]
    assert (vectors, factory) == ("3,000", "IVF16,SQ8")
    assert float(raw) > 0 and float(after_removal) >= float(after) >= float(before) > 0
    assert float(opened) > 0 and float(checked) > 0 and float(recovered) > 0
