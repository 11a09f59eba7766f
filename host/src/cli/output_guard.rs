//! Output paths are checked before anything runs: none may be an input (a dataset file, a file
//! inside a dataset directory, the model path, the model config, the cache, a plugin) or the
//! other output, and each must be writable.
//!
//! Files are compared by identity (device and inode, links resolved), not by spelling: `./a`,
//! `a` and a symlink to it are one file. A path that does not exist yet is identified by its
//! resolved parent directory and its file name.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::diagnostics::Hinted;

/// Where a path is, or will be, on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FileId {
    Existing {
        device: u64,
        inode: u64,
    },
    /// Not created yet: the nearest existing folder's identity and the path below it.
    Future {
        device: u64,
        inode: u64,
        rest: PathBuf,
    },
}

fn directory_of(path: &Path) -> &Path {
    path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn file_id(path: &Path) -> Option<FileId> {
    if let Ok(metadata) = std::fs::metadata(path) {
        return Some(FileId::Existing { device: metadata.dev(), inode: metadata.ino() });
    }
    // Folders that do not exist yet would be created below the nearest one that does.
    let mut rest = PathBuf::from(path.file_name()?);
    let mut folder = directory_of(path);
    loop {
        if let Ok(metadata) = std::fs::metadata(folder) {
            return Some(FileId::Future { device: metadata.dev(), inode: metadata.ino(), rest });
        }
        rest = Path::new(folder.file_name()?).join(rest);
        folder = directory_of(folder);
    }
}

/// One thing the evaluation reads (or, for the cache, also writes).
pub(super) struct Input {
    /// What it is, for the message: "dataset file", "the cache", ...
    pub what: String,
    pub path: PathBuf,
}

impl Input {
    pub fn new(what: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Input { what: what.into(), path: path.into() }
    }
}

/// One file the evaluation writes, with the flag that names it.
pub(super) struct Output<'a> {
    pub flag: &'static str,
    pub path: &'a Path,
}

/// Refuses (exit 2) any output that is an input, lies inside an input directory, or is the same
/// file as another output.
pub(super) fn check_distinct(outputs: &[Output<'_>], inputs: &[Input]) -> anyhow::Result<()> {
    for (index, output) in outputs.iter().enumerate() {
        let output_id = file_id(output.path);
        let same = |path: &Path| output_id.is_some() && file_id(path) == output_id;
        for input in inputs {
            if same(&input.path) {
                return Err(clash(output, &format!("{} `{}`", input.what, input.path.display())));
            }
            if input.path.is_dir() && is_inside(output.path, &input.path) {
                return Err(clash(
                    output,
                    &format!(
                        "inside {} `{}` (it would be read back as input)",
                        input.what,
                        input.path.display()
                    ),
                ));
            }
        }
        if let Some(other) = outputs[index + 1..].iter().find(|other| same(other.path)) {
            return Err(clash(output, &format!("the {} file", other.flag)));
        }
    }
    Ok(())
}

fn clash(output: &Output<'_>, what: &str) -> anyhow::Error {
    Hinted {
        message: format!(
            "{} `{}` is {what}: writing it would destroy data",
            output.flag,
            output.path.display()
        ),
        hint: format!("choose another path for {}", output.flag),
    }
    .into()
}

/// Whether `path` (existing or not) lies somewhere below `directory`, by directory identity.
fn is_inside(path: &Path, directory: &Path) -> bool {
    let Ok(target) = std::fs::metadata(directory) else { return false };
    // The nearest folder that exists: missing ones would be created inside it.
    let Some(start) = directory_of(path).ancestors().find_map(|ancestor| {
        let ancestor = if ancestor.as_os_str().is_empty() { Path::new(".") } else { ancestor };
        ancestor.canonicalize().ok()
    }) else {
        return false;
    };
    start.ancestors().any(|ancestor| {
        std::fs::metadata(ancestor)
            .is_ok_and(|found| found.dev() == target.dev() && found.ino() == target.ino())
    })
}

/// Checks that `path` can be written: not a directory, its folder creatable and writable.
/// Creates the folder (as writing would), and probes it with a file that is removed at once.
pub(super) fn check_writable(flag: &str, path: &Path) -> anyhow::Result<()> {
    let refuse = |reason: String, hint: &str| -> anyhow::Error {
        Hinted {
            message: format!("{flag} `{}` cannot be written: {reason}", path.display()),
            hint: hint.to_owned(),
        }
        .into()
    };
    if path.is_dir() {
        return Err(refuse("it is a directory".to_owned(), "give a file path, e.g. DIR/results.json"));
    }
    let directory = directory_of(path);
    std::fs::create_dir_all(directory).map_err(|error| {
        refuse(
            format!("cannot create its folder `{}`: {error}", directory.display()),
            "choose a writable location",
        )
    })?;
    let probe = directory.join(format!(".karma-write-check.{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(error) => {
            return Err(refuse(
                format!("its folder `{}` is not writable: {error}", directory.display()),
                "choose a writable location",
            ))
        }
    }
    if let Ok(metadata) = std::fs::metadata(path) {
        if metadata.permissions().readonly() && !running_as_root() {
            return Err(refuse(
                "the file is read-only".to_owned(),
                "choose another path or make it writable",
            ));
        }
    }
    Ok(())
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_outputs_in_a_folder_not_created_yet_are_compared() {
        let directory = tempfile::tempdir().unwrap();
        let first = directory.path().join("out/sub/r.json");
        let second = directory.path().join("./out/sub/r.json");
        let outputs =
            [Output { flag: "--output", path: &first }, Output { flag: "--samples-output", path: &second }];
        assert!(check_distinct(&outputs, &[]).is_err());
        let other = directory.path().join("out/other/r.json");
        let outputs =
            [Output { flag: "--output", path: &first }, Output { flag: "--samples-output", path: &other }];
        check_distinct(&outputs, &[]).unwrap();
    }

    #[test]
    fn files_are_compared_by_identity_not_spelling() {
        let directory = tempfile::tempdir().unwrap();
        let data = directory.path().join("data.jsonl");
        std::fs::write(&data, "{}\n").unwrap();
        let link = directory.path().join("link.jsonl");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        let spelt = directory.path().join(".").join("data.jsonl");
        let inputs = [Input::new("dataset file", &data)];
        for path in [&data, &link, &spelt] {
            let outputs = [Output { flag: "--output", path }];
            assert!(check_distinct(&outputs, &inputs).is_err(), "{}", path.display());
        }
        let fresh = directory.path().join("results.json");
        let twice = directory.path().join(".").join("results.json");
        let outputs =
            [Output { flag: "--output", path: &fresh }, Output { flag: "--samples-output", path: &twice }];
        let error = check_distinct(&outputs, &inputs).unwrap_err().to_string();
        assert!(error.contains("the --samples-output file"), "{error}");
        let outputs = [Output { flag: "--output", path: &fresh }];
        check_distinct(&outputs, &inputs).unwrap();
    }

    #[test]
    fn a_new_file_inside_a_dataset_directory_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let nested = directory.path().join("data/sub");
        std::fs::create_dir_all(&nested).unwrap();
        let inputs = [Input::new("dataset directory", directory.path().join("data"))];
        let inside = nested.join("results.json");
        let error = check_distinct(&[Output { flag: "--output", path: &inside }], &inputs).unwrap_err();
        assert!(error.to_string().contains("inside dataset directory"), "{error}");
        let beside = directory.path().join("results.json");
        check_distinct(&[Output { flag: "--output", path: &beside }], &inputs).unwrap();
    }
}
