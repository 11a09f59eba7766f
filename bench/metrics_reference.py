#!/usr/bin/env python3
"""Python baselines for `cargo bench -p karma-host --bench metric_stage`, and the reference
values the metric unit tests hold.

Times the Python implementations users compare against on the same prediction/reference
pairs the bench writes: sacrebleu (BLEU 13a and chrF++), rouge_score (rouge1/2/L/Lsum with
the Porter stemmer), jiwer (WER, CER) and KARMA's tokenised F1 (its formula, re-typed here:
KARMA's module needs the whole framework). HF `evaluate` is not timed: it fetches its metric
scripts from the hub at run time. Prints one JSON object {metric: seconds} on stdout, which the
bench reads to print ratios.

For a developer machine (the bench runs it when these imports work):

    pip install sacrebleu rouge-score jiwer nltk
    python3 bench/metrics_reference.py target/bench/metric-pairs.jsonl
    python3 bench/metrics_reference.py --reference-values
"""

import collections
import json
import re
import sys
import time


def tokenised_f1(prediction, reference):
    """KARMA's rule: '\\n' and '.' removed, lowercased, re \\w+ tokens, token-multiset F1."""

    def tokens(text):
        return re.findall(r"\w+", text.replace("\n", "").replace(".", "").lower())

    predicted, expected = tokens(prediction), tokens(reference)
    common = sum((collections.Counter(predicted) & collections.Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def time_references(path):
    import jiwer
    import sacrebleu
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import CHRF

    pairs = [json.loads(line) for line in open(path, encoding="utf-8")]
    predictions = [pair["prediction"] for pair in pairs]
    references = [pair["reference"] for pair in pairs]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    seconds = {
        "bleu": timed(lambda: sacrebleu.corpus_bleu(predictions, [references])),
        "chrf": timed(lambda: CHRF(word_order=2).corpus_score(predictions, [references])),
        # One scorer call computes all four; the bench compares it with its four together.
        "rouge": timed(lambda: [scorer.score(r, p) for p, r in zip(predictions, references)]),
        "wer": timed(lambda: jiwer.wer(references, predictions)),
        "cer": timed(lambda: jiwer.cer(references, predictions)),
        "tokenised_f1": timed(lambda: [tokenised_f1(p, r) for p, r in zip(predictions, references)]),
    }
    print(json.dumps({"pairs": len(pairs), "seconds": seconds}))


def reference_values():
    """The values host/src/metrics/{chrf,rouge,porter}.rs test against."""
    from nltk.stem.porter import PorterStemmer
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import CHRF

    chrf = CHRF(word_order=2)
    for hypotheses, references in [
        (["the cat sat on the mat.", "a dog ran (fast)"], [["the cat sat on a mat", "the dog ran fast"]]),
        (["रोगी को बुखार है।"], [["रोगी को तेज़ बुखार है।"]]),
        (["Take two tablets daily."], [["Take 2 tablets every day."], ["Take two tablets each day."]]),
    ]:
        print("chrf", repr(chrf.corpus_score(hypotheses, references).score))
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    for target, prediction in [
        ("The patient was given medications for hypertension.", "Patients are given medication for high blood pressure."),
        ("the cat sat on the mat\nit was happy", "a cat sat on a mat\nhappy it was"),
    ]:
        scores = scorer.score(target, prediction)
        print("rouge", [repr(scores[kind].fmeasure) for kind in ["rouge1", "rouge2", "rougeL", "rougeLsum"]])
    stemmer = PorterStemmer()
    words = "caresses ponies agreed hopping generalization medications analogies fully cried yyyy".split()
    print("porter", [(word, stemmer.stem(word)) for word in words])


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--reference-values":
        reference_values()
    elif len(sys.argv) == 2:
        time_references(sys.argv[1])
    else:
        sys.exit(__doc__)
