//! Visual question answering: a question about one or more images, answered in a few words and
//! scored against reference answers; and multiple-choice questions that come with images
//! (MedXpertQA MM).

use karma_plugin_api::abi::Modality;

use super::{
    mcq::Mcq, open_qa::free_text_item, texts, BuildContext, BuildState, TaskFamily, TaskItem, TaskType,
};
use crate::datasets::{
    extract::Extraction,
    media::media_list,
    record::{error, required_text, RowError},
    row::RowValue,
};

const IMAGE_AND_TEXT: &[Modality] = &[Modality::Text, Modality::Image];

/// How a VQA dataset asks its question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VqaPrompt {
    /// VQA-RAD: radiology images, a word or two wanted.
    Radiology,
    /// SLAKE: reasoning allowed, the answer after `Final Answer:`.
    FinalAnswer,
    /// A local file: the question and a request for a short answer.
    Plain,
}

impl VqaPrompt {
    fn render(self, question: &str) -> String {
        match self {
            VqaPrompt::Radiology => format!(
                "The image is a radiology study: a frontal chest X-ray, or one slice of a head or \
                 abdominal CT or MR scan. Answer the question about it as briefly and definitively as \
                 you can, in a single word if possible.\n\nQuestion: {question}"
            ),
            VqaPrompt::FinalAnswer => format!(
                "{question}\n\nYou may reason first. Then give your answer as briefly as possible (a \
                 single word, or the letter of your choice) on a last line of the form \"Final Answer: X\"."
            ),
            VqaPrompt::Plain => {
                format!("Answer the question about the image as briefly as you can.\n\nQuestion: {question}")
            }
        }
    }
}

/// Rows with `image` (or `images`), `question` and `answer`.
#[derive(Clone, Copy, Debug)]
pub struct Vqa {
    pub prompt: VqaPrompt,
    pub extraction: Extraction,
    /// Whether references are lowercased (KARMA does so for VQA-RAD and SLAKE, whose answers
    /// are mostly single words).
    pub lowercase_answers: bool,
}

impl TaskFamily for Vqa {
    fn task_type(&self) -> TaskType {
        TaskType::Vqa
    }

    fn modalities(&self) -> &'static [Modality] {
        IMAGE_AND_TEXT
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let question = required_text(row, "question")?;
        let mut references = texts(row, "answer")?;
        if self.lowercase_answers {
            references.iter_mut().for_each(|reference| *reference = reference.to_lowercase());
        }
        let images = images(row, state)?;
        let input = match context.template_override {
            Some(template) => template.replace("<QUESTION>", &question),
            None => self.prompt.render(&question),
        };
        let mut built = free_text_item(row, index, input, references);
        built.item.images = images;
        Ok(built)
    }

    fn extraction(&self) -> Extraction {
        self.extraction
    }

    fn local_columns(&self) -> &'static str {
        "image or images (path relative to the file, base64, data URL, or {bytes, path}), question, answer \
         (text or list); optional id, system_prompt, group"
    }

    fn recognises(&self, row: &RowValue<'_>) -> bool {
        (row.get("image").is_some() || row.get("images").is_some())
            && row.get("question").is_some()
            && row.get("answer").is_some()
            && row.get("options").is_none()
    }
}

/// The row's images (`image`, else `images`): at least one.
fn images(row: &RowValue<'_>, state: &BuildState) -> Result<Vec<crate::datasets::item::MediaBlob>, RowError> {
    let field = if row.get("image").is_some() { "image" } else { "images" };
    let images = media_list(row, field, &state.media_root)?;
    if images.is_empty() {
        return Err(error(field, "missing: the question is about an image"));
    }
    Ok(images)
}

/// A multiple-choice question with images (`images`): the MCQ family's item, with the images
/// attached.
#[derive(Clone, Copy, Debug)]
pub struct ImageMcq(pub Mcq);

impl TaskFamily for ImageMcq {
    fn task_type(&self) -> TaskType {
        TaskType::Mcqa
    }

    fn modalities(&self) -> &'static [Modality] {
        IMAGE_AND_TEXT
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let images = images(row, state)?;
        let mut built = self.0.build(row, index, context, state)?;
        built.item.images = images;
        Ok(built)
    }

    fn extraction(&self) -> Extraction {
        self.0.extraction()
    }

    fn supports_loglikelihood(&self) -> bool {
        false
    }

    fn local_columns(&self) -> &'static str {
        "MedXpertQA MM's columns: id, question, options (letter -> text), label, images"
    }

    fn recognises(&self, _row: &RowValue<'_>) -> bool {
        false
    }
}
