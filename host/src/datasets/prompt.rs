//! Prompt templates. Our own wording, KARMA's intent: reason step by step, then end with
//! `Final Answer: (X)`, so the same extraction rule applies everywhere.

use super::record::McqRecord;

/// How a dataset's items are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// Medical MCQ; a context, when present, comes before the question.
    MedicalMcq,
    /// Question about a given passage (PubMedQA): the passage is shown once, labelled.
    ContextualMcq,
    /// Indian branded medicines: brands, generics and salt compositions.
    IndianDrug,
    /// India's National Formulary: statements to judge true or false, and questions.
    EkaNfi,
    /// AfriMed-QA's expert MCQs: the letter alone is asked for, without reasoning.
    LetterOnly,
}

/// Appends the question and its `X. option` lines.
fn push_question_block(prompt: &mut String, record: &McqRecord<'_>) {
    prompt.push_str(&record.question);
    for (letter, text) in &record.options {
        prompt.push('\n');
        prompt.push_str(letter);
        prompt.push_str(". ");
        prompt.push_str(text);
    }
}

/// Appends `A, B, C or D`.
fn push_letters(prompt: &mut String, record: &McqRecord<'_>) {
    let count = record.options.len();
    for (index, (letter, _)) in record.options.iter().enumerate() {
        if index > 0 {
            prompt.push_str(if index + 1 == count { " or " } else { ", " });
        }
        prompt.push_str(letter);
    }
}

const MCQ_INTRODUCTION: &str =
    "The following is a multiple-choice question about medical knowledge. Summarise the \
                                relevant facts first, then choose a single option.\n\n";
const INDIAN_DRUG_INTRODUCTION: &str =
    "The following is a multiple-choice question about pharmaceutical medicines sold in India \
     (brand names, generic names and salt compositions).\n\n";
const NFI_INTRODUCTION: &str = "You are an expert in Indian pharmacology. Answer the following \
                                question from the National Formulary of India.\n\n";
const LETTER_ONLY_INTRODUCTION: &str =
    "Read the question carefully and choose the most appropriate answer.\n\n";
const CONTEXTUAL_INTRODUCTION: &str =
    "Answer the question using the research context below. Reply with one of the options.\n\n";

impl Template {
    /// Renders the prompt for `record`. `override_text`, from the `confinement_instructions`
    /// dataset argument, replaces the template: `<QUESTION>` becomes the question with its
    /// options and `<CONTEXT>` the context; a text that also has `<OPTIONS>` gets the bare
    /// question for `<QUESTION>` and the option lines there (AfriMed-QA's form).
    pub fn render(self, record: &McqRecord<'_>, override_text: Option<&str>) -> String {
        if let Some(text) = override_text {
            let (question, options) = if text.contains("<OPTIONS>") {
                let lines: Vec<String> =
                    record.options.iter().map(|(letter, option)| format!("{letter}. {option}")).collect();
                (record.question.to_string(), lines.join("\n"))
            } else {
                let mut question_block = String::new();
                push_question_block(&mut question_block, record);
                (question_block, String::new())
            };
            return text
                .replace("<QUESTION>", &question)
                .replace("<OPTIONS>", &options)
                .replace("<CONTEXT>", record.context.as_deref().unwrap_or_default());
        }
        // Built in one buffer: this runs for every item of every dataset.
        let mut prompt = String::with_capacity(
            256 + record.question.len()
                + record.options.iter().map(|(_, text)| text.len() + 4).sum::<usize>()
                + record.context.as_ref().map_or(0, |context| context.len()),
        );
        prompt.push_str(match self {
            Template::ContextualMcq if record.context.is_some() => CONTEXTUAL_INTRODUCTION,
            Template::MedicalMcq | Template::ContextualMcq => MCQ_INTRODUCTION,
            Template::IndianDrug => INDIAN_DRUG_INTRODUCTION,
            Template::EkaNfi => NFI_INTRODUCTION,
            Template::LetterOnly => LETTER_ONLY_INTRODUCTION,
        });
        push_context_and_question(&mut prompt, record);
        if self == Template::LetterOnly {
            prompt.push_str("\n\nReply with the letter of the answer only (");
            push_letters(&mut prompt, record);
            prompt.push_str("), with no explanation.");
        } else {
            prompt.push_str("\n\nThink step by step, then end your response with \"Final Answer: (X)\", where X is exactly one of ");
            push_letters(&mut prompt, record);
            prompt.push('.');
        }
        prompt
    }
}

/// The context a model is scored on under `--scoring loglikelihood` (lm-eval-harness style):
/// context, question and options, ending in `Answer:`; each option is then scored as the
/// continuation ` A`, ` B`, ...
pub fn loglikelihood_context(record: &McqRecord<'_>) -> String {
    let mut prompt = String::new();
    push_context_and_question(&mut prompt, record);
    prompt.push_str("\nAnswer:");
    prompt
}

/// Appends `Context: ...` (when the record has one, shown once) then `Question: ` and the
/// question block.
fn push_context_and_question(prompt: &mut String, record: &McqRecord<'_>) {
    if let Some(context) = &record.context {
        prompt.push_str("Context: ");
        prompt.push_str(context);
        prompt.push_str("\n\n");
    }
    prompt.push_str("Question: ");
    push_question_block(prompt, record);
}

/// The continuation scored for an option letter.
pub fn loglikelihood_continuation(letter: &str) -> String {
    format!(" {letter}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(context: Option<&str>) -> McqRecord<'_> {
        McqRecord {
            source_id: "1".into(),
            question: "Which organ secretes insulin?".into(),
            context: context.map(Into::into),
            options: vec![
                ("A".into(), "Liver".into()),
                ("B".into(), "Pancreas".into()),
                ("C".into(), "Spleen".into()),
            ],
            answer: "B".into(),
            group: None,
            system_prompt: None,
        }
    }

    #[test]
    fn mcq_prompt_has_question_options_and_answer_format() {
        let prompt = Template::MedicalMcq.render(&record(None), None);
        assert!(
            prompt.contains("Question: Which organ secretes insulin?\nA. Liver\nB. Pancreas\nC. Spleen\n\n"),
            "{prompt}"
        );
        assert!(
            prompt.ends_with(
                "end your response with \"Final Answer: (X)\", where X is exactly one of A, B or C."
            ),
            "{prompt}"
        );
    }

    #[test]
    fn loglikelihood_context_ends_where_the_letter_goes() {
        let prompt = loglikelihood_context(&record(Some("Beta cells")));
        assert_eq!(
            prompt,
            "Context: Beta cells\n\nQuestion: Which organ secretes insulin?\nA. Liver\nB. Pancreas\nC. Spleen\nAnswer:"
        );
        assert_eq!(loglikelihood_continuation("B"), " B");
    }

    #[test]
    fn context_appears_once() {
        let prompt = Template::ContextualMcq.render(&record(Some("Beta cells...")), None);
        assert_eq!(prompt.matches("Beta cells...").count(), 1);
        assert!(prompt.contains("Context: Beta cells...\n\nQuestion: Which organ"), "{prompt}");
    }

    #[test]
    fn letter_only_prompts_ask_for_the_letter() {
        let prompt = Template::LetterOnly.render(&record(None), None);
        assert!(
            prompt.ends_with(
                "C. Spleen\n\nReply with the letter of the answer only (A, B or C), with no explanation."
            ),
            "{prompt}"
        );
        let split = Template::LetterOnly.render(&record(None), Some("Q: <QUESTION>\nOptions:\n<OPTIONS>"));
        assert_eq!(split, "Q: Which organ secretes insulin?\nOptions:\nA. Liver\nB. Pancreas\nC. Spleen");
    }

    #[test]
    fn confinement_instructions_override_the_template() {
        let prompt = Template::MedicalMcq.render(&record(Some("ctx")), Some("Q: <QUESTION> | C: <CONTEXT>"));
        assert_eq!(prompt, "Q: Which organ secretes insulin?\nA. Liver\nB. Pancreas\nC. Spleen | C: ctx");
    }
}
