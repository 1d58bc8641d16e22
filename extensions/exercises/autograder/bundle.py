"""Gradescope's autograder bundle: make autograder OUT=dir [EX=1,2,3]

    python -m extensions.exercises.autograder.bundle OUT [--exercises 1,2,3]

Writes OUT/autograder.zip, the file a teacher uploads to a Gradescope programming assignment:
setup.sh and run_autograder at its top (Gradescope's names), and this repository, the reference,
beside them, with graded.json naming the exercises it grades (all seven unless EX= says fewer;
make the student copies with the same EX=). Upload it, never hand it out: it holds the solution,
the ranges of correct code and the grader's own checks.
"""

import argparse
import json
import os
import zipfile

from extensions.exercises import student

HERE = os.path.dirname(os.path.abspath(__file__))
AT_TOP = ('setup.sh', 'run_autograder')
LEFT_OUT = ('example/', 'extensions/docs/')  # what grading never reads: reports and figures


def write(out, exercises):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, 'autograder.zip')
    with zipfile.ZipFile(path + '.tmp', 'w', zipfile.ZIP_DEFLATED) as z:
        for name in AT_TOP:
            z.write(os.path.join(HERE, name), name)
        for f in student.files(student.ROOT):
            if not f.startswith(LEFT_OUT) and not f.endswith('graded.json'):
                z.write(os.path.join(student.ROOT, f), f)
        graded = os.path.relpath(os.path.join(HERE, 'graded.json'), student.ROOT)
        z.writestr(graded, json.dumps({'exercises': exercises}) + '\n')
    os.replace(path + '.tmp', path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description='Write autograder.zip for Gradescope.')
    parser.add_argument('out', help='the folder to write autograder.zip into')
    parser.add_argument('--exercises', type=student.exercise_list, default=list(student.EXERCISES))
    args = parser.parse_args(argv)
    path = write(args.out, args.exercises)
    print(f'wrote {path}: grades exercises {",".join(map(str, args.exercises))}')
    print('upload it to a Gradescope programming assignment (TEACHER.md); never hand it out')


if __name__ == '__main__':
    main()
