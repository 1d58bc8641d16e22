"""make bench runs on the CPU at small sizes and reports every row."""

from extensions.bench import bench


def test_bench_reports_every_row(capsys):
    rows = bench.main(['--steps', '2', '--workers', '1', '--batch-size', '32', '--no-compile'])
    assert len(rows) == 4 and all(v > 0 for v in rows.values())
    out = capsys.readouterr().out
    assert 'ours / conventional' in out and 'head + reg overhead' in out
