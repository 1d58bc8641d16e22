"""Check of exercise 7, a measurement: your network trained on fully random class labels (Zhang et
al. 2017) and your readings of it (readings.py says what it asks; doing nothing fails)."""

from extensions.exercises import readings as R

ASKED = ['zhang train_acc', 'zhang test_acc', 'zhang a_train', 'zhang a_fresh', 'zhang a_heldout']
ASKED += ['zhang a_init', 'zhang m interval']


def test_your_readings_are_your_runs_numbers():
    R.compare(R.readings(7), ASKED, {'zhang': R.run(7, 'zhang')})


def test_every_answer_is_a_choice_with_a_line_why():
    """q1 (does m see that the network memorized its class labels?) is yes or no, with a line why;
    whether it is the right one is for the grader to say, from your interval by the README's
    rule. q2 asks what a memorization measure would need to see: one line, for your teacher."""
    given = R.readings(7)
    R.choice_with_why(given, 'q1', ('yes', 'no'))
    assert len(given.get('q2', '').split()) >= 5, 'answer q2 in a line of your own'
