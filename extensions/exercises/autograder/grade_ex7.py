"""The grader's own check of exercise 7 (never in a student copy): its rerun of the run from the
submitted code, the submitted run against it, the rerun against the range of correct code, and
q1 against the student's own interval (judge.py says how). q2 is read by a person."""

import pytest

from extensions.exercises import readings as R
from extensions.exercises.autograder import judge


def test_the_grader_reran_your_runs():
    judge.reran_all(7)


def test_your_runs_agree_with_the_graders_reruns():
    judge.agree(7)


def test_the_reruns_land_where_correct_code_lands():
    judge.in_ranges(7)


@pytest.mark.parametrize('question', ['q1'])
def test_your_answer(question):
    """Does m see that the network memorized its class labels? yes only when m's interval lies
    above 0."""
    tap = R.run(7, 'zhang')[1]
    expected = 'yes' if R.above(tap['memorization_ci']) == 'above' else 'no'
    judge.answer(R.readings(7), question, ('yes', 'no'), expected)
