//! Starting, steering and reading releases: what the CLI, the API and the
//! demo share. A release is one item of the records table
//! (`release:<name>`), so any tool can write it; these writers check it
//! first, and never replace a release that exists.

use serde_json::{Value, json};

use super::write::UPDATED_AT_ATTRIBUTE;
use super::{CloudError, DesiredStore, ErrorKind, FleetItem, Precondition, SpecChanges, SpecWrite};
use crate::fleet::{ReleaseStatus, parse_release};
use crate::rollout::items::RELEASE_PREFIX;
use crate::rollout::spec::KEY_ATTRIBUTE;
use crate::time::Timestamp;

/// What people ask of a release in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseAction {
    /// Start no new member; rollouts in flight go on.
    Pause,
    /// Lift a pause, or a halt by the failure budget (which forgives the
    /// failures so far and retries them).
    Resume,
    /// Abort the rollouts in flight and start nothing again.
    Abort,
}

impl ReleaseAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseAction::Pause => "pause",
            ReleaseAction::Resume => "resume",
            ReleaseAction::Abort => "abort",
        }
    }
}

impl std::str::FromStr for ReleaseAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pause" => Ok(ReleaseAction::Pause),
            "resume" => Ok(ReleaseAction::Resume),
            "abort" => Ok(ReleaseAction::Abort),
            _ => Err(format!(
                "unknown release action {s:?}: use pause, resume or abort"
            )),
        }
    }
}

/// A release's item key from its name.
pub fn item_name(name: &str) -> Result<String, CloudError> {
    let name = name.strip_prefix(RELEASE_PREFIX).unwrap_or(name);
    let fine = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !fine {
        return Err(CloudError::new(
            ErrorKind::Invalid,
            "dynamodb:UpdateItem",
            format!(
                "release name {name:?}: use 1-200 letters, digits, '-', '_' or '.' (e.g. base-image-2026-12)"
            ),
        ));
    }
    Ok(format!("{RELEASE_PREFIX}{name}"))
}

/// A release as stored: its record and the status cutover wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRelease {
    pub name: String,
    pub body: Value,
    /// `None` before cutover's first look, or when it does not decode.
    pub status: Option<ReleaseStatus>,
    pub status_version: u64,
}

impl StoredRelease {
    pub fn from_item(item: FleetItem) -> StoredRelease {
        StoredRelease {
            status: item
                .status
                .and_then(|s| serde_json::from_value::<ReleaseStatus>(s).ok()),
            name: item.name,
            body: item.body,
            status_version: item.status_version,
        }
    }
}

/// Writes a new release, checked first: every problem is named, with its
/// fix, before anything is written. An existing release is never replaced
/// (write a new one under a new name).
pub async fn start(
    store: &dyn DesiredStore,
    name: &str,
    body: &Value,
) -> Result<SpecWrite, CloudError> {
    const OP: &str = "dynamodb:UpdateItem";
    let key = item_name(name)?;
    let Some(fields) = body.as_object() else {
        return Err(CloudError::new(
            ErrorKind::Invalid,
            OP,
            "the release must be a JSON object of fields",
        ));
    };
    let mut checked = body.clone();
    checked[KEY_ATTRIBUTE] = json!(key);
    parse_release(&checked).map_err(|e| CloudError::new(ErrorKind::Invalid, OP, e.to_string()))?;
    let changes: SpecChanges = fields
        .iter()
        .filter(|(k, _)| k.as_str() != KEY_ATTRIBUTE)
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    // A reply lost after DynamoDB applied the write (a connection reset, a
    // timeout) leaves the writer not knowing whether it landed, and a retry
    // of a write conditioned on no item fails if the first one did. The item
    // tells: one that holds exactly the fields written is this start,
    // landed, as AppSync's DynamoDB resolver judges a failed condition whose
    // item already matches the write
    // (https://docs.aws.amazon.com/appsync/latest/devguide/js-aws-appsync-resolver-reference-dynamodb-condition-expressions.html).
    let mut attempt = 1;
    loop {
        match store.write_item(&key, &changes, Precondition::Absent).await {
            Err(e) if e.kind.is_retryable() => match store.get_item(&key).await {
                Ok(Some(item)) => return Ok(landed(&item, &changes)),
                Ok(None) if attempt < START_ATTEMPTS => attempt += 1,
                _ => return Err(e),
            },
            other => return other,
        }
    }
}

/// Attempts at a start whose replies are lost and whose item is not there.
const START_ATTEMPTS: u32 = 3;

/// What a start whose reply was lost did, judged from the item now stored:
/// written when it holds every field the start wrote, else someone else's.
fn landed(item: &FleetItem, changes: &SpecChanges) -> SpecWrite {
    let ours = changes.iter().all(|(k, v)| item.body.get(k) == v.as_ref());
    if !ours {
        return SpecWrite::PreconditionFailed;
    }
    let updated_at = item.body.get(UPDATED_AT_ATTRIBUTE).and_then(Value::as_str);
    SpecWrite::Written {
        updated_at: updated_at.unwrap_or_default().to_string(),
    }
}

/// Carries out `action` on the release `name`; `Ok(None)` when it has no
/// item.
pub async fn act(
    store: &dyn DesiredStore,
    name: &str,
    action: ReleaseAction,
    now: Timestamp,
) -> Result<Option<SpecWrite>, CloudError> {
    let key = item_name(name)?;
    if store.get_item(&key).await?.is_none() {
        return Ok(None);
    }
    let changes: SpecChanges = match action {
        ReleaseAction::Pause => SpecChanges::from([("paused".into(), Some(json!(true)))]),
        // A new `resume` value is what lifts a halt by the budget; `paused`
        // false lifts a pause. Both are right whatever else changed.
        ReleaseAction::Resume => SpecChanges::from([
            ("paused".into(), Some(json!(false))),
            ("resume".into(), Some(json!(now.to_string()))),
        ]),
        ReleaseAction::Abort => SpecChanges::from([("abort".into(), Some(json!(true)))]),
    };
    store
        .write_item(&key, &changes, Precondition::Exists)
        .await
        .map(Some)
}

/// The release `name`, as stored.
pub async fn get(
    store: &dyn DesiredStore,
    name: &str,
) -> Result<Option<StoredRelease>, CloudError> {
    let key = item_name(name)?;
    Ok(store.get_item(&key).await?.map(StoredRelease::from_item))
}

/// Every release of the table, each read consistently after a scan found it.
pub async fn list(store: &dyn DesiredStore) -> Result<Vec<StoredRelease>, CloudError> {
    let listing = store.scan().await?;
    let mut releases = Vec::new();
    for item in listing.unkeyed {
        if item.given.starts_with(RELEASE_PREFIX)
            && let Some(found) = store.get_item(&item.given).await?
        {
            releases.push(StoredRelease::from_item(found));
        }
    }
    releases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(releases)
}
