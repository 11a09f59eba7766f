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
}

fn option_lines(record: &McqRecord) -> String {
    record.options.iter().map(|(letter, text)| format!("{letter}. {text}")).collect::<Vec<_>>().join("\n")
}

fn letters(record: &McqRecord) -> String {
    let letters: Vec<&str> = record.options.iter().map(|(letter, _)| letter.as_str()).collect();
    match letters.as_slice() {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [head @ .., last] => format!("{} or {last}", head.join(", ")),
    }
}

impl Template {
    /// Renders the prompt for `record`. `override_text`, from the `confinement_instructions`
    /// dataset argument, replaces the template: `<QUESTION>` becomes the question with its
    /// options and `<CONTEXT>` the context.
    pub fn render(self, record: &McqRecord, override_text: Option<&str>) -> String {
        let question_block = format!("{}\n{}", record.question, option_lines(record));
        if let Some(text) = override_text {
            return text
                .replace("<QUESTION>", &question_block)
                .replace("<CONTEXT>", record.context.as_deref().unwrap_or_default());
        }
        let ending = format!(
            "Think step by step, then end your response with \"Final Answer: (X)\", where X is exactly one of {}.",
            letters(record)
        );
        match (self, &record.context) {
            (Template::ContextualMcq, Some(context)) => format!(
                "Answer the question using the research context below. Reply with one of the options.\n\n\
                 Context: {context}\n\nQuestion: {question_block}\n\n{ending}"
            ),
            (_, Some(context)) => format!(
                "The following is a multiple-choice question about medical knowledge. Summarise the relevant facts \
                 first, then choose a single option.\n\nContext: {context}\n\nQuestion: {question_block}\n\n{ending}"
            ),
            (_, None) => format!(
                "The following is a multiple-choice question about medical knowledge. Summarise the relevant facts \
                 first, then choose a single option.\n\nQuestion: {question_block}\n\n{ending}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(context: Option<&str>) -> McqRecord {
        McqRecord {
            source_id: "1".into(),
            question: "Which organ secretes insulin?".into(),
            context: context.map(str::to_owned),
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
    fn context_appears_once() {
        let prompt = Template::ContextualMcq.render(&record(Some("Beta cells...")), None);
        assert_eq!(prompt.matches("Beta cells...").count(), 1);
        assert!(prompt.contains("Context: Beta cells...\n\nQuestion: Which organ"), "{prompt}");
    }

    #[test]
    fn confinement_instructions_override_the_template() {
        let prompt = Template::MedicalMcq.render(&record(Some("ctx")), Some("Q: <QUESTION> | C: <CONTEXT>"));
        assert_eq!(prompt, "Q: Which organ secretes insulin?\nA. Liver\nB. Pancreas\nC. Spleen | C: ctx");
    }
}
