//! The files a CodePipeline release already produces — a `taskdef.json`
//! with image placeholders, the `imageDetail.json` CodeBuild writes, and
//! CodeDeploy's `appspec.yaml` — read, cross-checked and turned into what a
//! desired record needs. Pure: reading the files is the only IO, and
//! registering the task definition is left to the caller.

mod appspec;
mod taskdef;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use appspec::{AppSpec, AppSpecHook, Placement};
pub use taskdef::TaskDef;

/// What is wrong with an artifact: the file, the field (a path into it,
/// empty for the whole file) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ArtifactError {
    pub file: String,
    pub field: String,
    pub message: String,
}

impl ArtifactError {
    pub fn new(file: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        ArtifactError {
            file: file.display().to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: field `{}`: {}", self.file, self.field, self.message)
        }
    }
}

/// One `--image-detail`: the placeholder it fills and its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDetail {
    pub placeholder: String,
    pub path: PathBuf,
}

impl ImageDetail {
    /// `NAME=path`, or a bare path that fills `IMAGE<n>_NAME`, `n` counting
    /// the bare paths from 1 as CodePipeline numbers its image artifacts.
    pub fn parse_all(raw: &[String]) -> Vec<ImageDetail> {
        let mut n = 0;
        raw.iter()
            .map(|r| match r.split_once('=') {
                Some((name, path)) if is_placeholder_name(name) => ImageDetail {
                    placeholder: name.to_string(),
                    path: PathBuf::from(path),
                },
                _ => {
                    n += 1;
                    ImageDetail {
                        placeholder: format!("IMAGE{n}_NAME"),
                        path: PathBuf::from(r),
                    }
                }
            })
            .collect()
    }
}

fn is_placeholder_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Everything read from the artifacts, checked against each other.
#[derive(Clone, Debug, PartialEq)]
pub struct Release {
    pub taskdef: TaskDef,
    pub appspec: Option<AppSpec>,
}

impl Release {
    /// The container and port that receive traffic: the AppSpec's, or
    /// `None` without one.
    pub fn traffic(&self) -> Option<(&str, u16)> {
        self.appspec
            .as_ref()
            .map(|a| (a.container.as_str(), a.container_port))
    }
}

pub(crate) fn read(path: &Path) -> Result<String, ArtifactError> {
    std::fs::read_to_string(path)
        .map_err(|e| ArtifactError::new(path, "", format!("cannot be read: {e}")))
}

/// The image URI of one `imageDetail.json`.
pub fn image_uri(path: &Path, text: &str) -> Result<String, ArtifactError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ArtifactError::new(path, "", format!("is not JSON: {e}")))?;
    match v.get("ImageURI") {
        Some(Value::String(uri))
            if !uri.trim().is_empty() && !uri.contains(char::is_whitespace) =>
        {
            Ok(uri.clone())
        }
        Some(other) => Err(ArtifactError::new(
            path,
            "ImageURI",
            format!("{other} is not an image reference such as registry/repo:tag"),
        )),
        None => Err(ArtifactError::new(
            path,
            "ImageURI",
            "is missing: CodeBuild writes {\"ImageURI\": \"<registry>/<repo>@sha256:…\"}",
        )),
    }
}

/// Reads and checks the artifacts: placeholders filled from the image
/// details, and the AppSpec's container and port present in the task
/// definition.
pub fn load(
    taskdef: &Path,
    images: &[ImageDetail],
    appspec: Option<&Path>,
) -> Result<Release, ArtifactError> {
    let mut values = Vec::new();
    for image in images {
        values.push((
            image.placeholder.clone(),
            image_uri(&image.path, &read(&image.path)?)?,
        ));
    }
    let taskdef = TaskDef::parse(taskdef, &read(taskdef)?, &values)?;
    let appspec = match appspec {
        Some(path) => {
            let spec = AppSpec::parse(path, &read(path)?)?;
            taskdef.check_target(path, &spec)?;
            Some(spec)
        }
        None => None,
    };
    Ok(Release { taskdef, appspec })
}
