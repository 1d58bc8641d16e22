"""Every refusal of train.py holds in every training entry point: each runs train.run with its own
seams, and the bad-input catalogue of tests/test_faults.py, run through each, gives one line naming
the flag and exit code 2; so do the refusals that come after parsing (an unwritable --out, a
folder that holds another run, --compile with fewer images than a batch)."""

import pytest
from conftest import TINY
from test_faults import BAD

import train
from extensions.multigpu import train_ddp
from extensions.related import train_related
from extensions.validation import train_half

ENTRY_POINTS = {
    'train.py': train.main,
    'train_related': train_related.main,
    'train_half': train_half.main,
    'train_ddp': train_ddp.main,
}
AFTER_PARSING = {  # name: (arguments, what the message names)
    'memorize and unlearn': (['--memorize', '--unlearn', 'grl'], '--memorize'),
    'compile without a full batch': (['--subset', '32', '--compile'], '--batch-size'),
}


def refused(main, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count('\n') == 1 and 'Traceback' not in err, err
    return err


@pytest.mark.parametrize('entry', ENTRY_POINTS)
@pytest.mark.parametrize('name', BAD)
def test_the_bad_input_catalogue_is_refused_by_every_entry_point(entry, name, tmp_path, capsys):
    err = refused(ENTRY_POINTS[entry], [*TINY, '--out', str(tmp_path), *BAD[name]], capsys)
    assert err.startswith(f'{entry}: error: ') and BAD[name][0] in err, err


@pytest.mark.parametrize('entry', ENTRY_POINTS)
def test_refusals_after_parsing_hold_in_every_entry_point(entry, tmp_path, capsys):
    main = ENTRY_POINTS[entry]
    for args, named in AFTER_PARSING.values():
        assert named in refused(main, [*TINY, '--out', str(tmp_path / 'a'), *args], capsys)
    (tmp_path / 'file').write_text('')
    assert '--out' in refused(main, [*TINY, '--out', str(tmp_path / 'file' / 'run')], capsys)
    main([*TINY, '--epochs', '1', '--subset', '64', '--out', str(tmp_path / 'b')])
    argv = [*TINY, '--epochs', '2', '--subset', '64', '--out', str(tmp_path / 'b')]
    assert '--epochs 1 -> 2' in refused(main, argv, capsys)
