//! Grading answers with a judge model: the prompts a judge is given and how its replies are
//! read. The stage that calls the judge is `engine/grading.rs`.

pub mod rubric;
