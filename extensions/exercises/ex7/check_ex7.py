"""Check of exercise 7, a measurement: your network trained on fully random class labels (Zhang et
al. 2017) and your readings of it (readings.py says what it asks; doing nothing fails)."""

from extensions.exercises import readings as R

ASKED = ['zhang train_acc', 'zhang test_acc', 'zhang a_train', 'zhang a_fresh', 'zhang a_heldout']
ASKED += ['zhang a_init', 'zhang m interval']


def test_your_run_lands_where_the_reference_code_lands():
    results, tap = R.run(7, 'zhang')
    R.in_ranges(7, 'zhang', results, tap)


def test_your_readings_are_your_runs_numbers():
    R.compare(R.readings(7), ASKED, {'zhang': R.run(7, 'zhang')})


def test_your_answers_follow_from_your_intervals():
    """q1: does m see that the network memorized its class labels? yes only when m's interval lies
    above 0. q2 asks what a memorization measure would need to see: one line, for your teacher."""
    given, (_, tap) = R.readings(7), R.run(7, 'zhang')
    R.answer(
        given, 'q1', ('yes', 'no'), 'yes' if R.above(tap['memorization_ci']) == 'above' else 'no'
    )
    assert len(given.get('q2', '').split()) >= 5, 'answer q2 in a line of your own'
